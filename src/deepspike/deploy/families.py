"""The rate-coded net families the NIR conformance checks export: small seeded nets with sample inputs.

``build(family, neuron, reset)`` -> a :class:`RateNetwork` on ``input_shape(family)`` = ``(1, 8, 8)`` inputs
(digits-sized) whose body is

* ``dense``: Linear(64, 32) -> N -> Linear(32, 10) -> N(readout), on flat ``(64,)`` inputs (no Flatten node,
  so tools without one load it)
* ``conv``:  Conv2d(1, 4, 3, pad 1) -> N -> Flatten -> Linear(256, 10) -> N(readout)
* ``pool``:  Conv2d(1, 4, 3, pad 1) -> N -> AvgPool2d(2) -> Flatten -> Linear(64, 10) -> N(readout)
* ``residual``: Conv2d(1, 4, 3, pad 1) -> N -> [N(Conv2d(4, 4, 3, pad 1) -> N -> Conv2d(4, 4, 3, pad 1) + identity)]
  -> Flatten -> Linear(256, 10) -> N(readout): one residual block, its junction neurons fed by both branches
* ``recurrent``: Linear(64, 32) -> N with a recurrent weight V [32, 32] (``layers.recurrent``: ``N(W x_t + V s_{t-1})``,
  a cycle ``lif -> rec -> lif`` in NIR) -> Linear(32, 10) -> N(readout), on flat ``(64,)`` inputs
* ``delayed``: DelayedLinear(64, 32, D = 4, bias) with its delays rounded to whole steps (``layers.delays``: ``y_t =
  b + sum_n w_n x_{t - d_n}``; in NIR one ``Delay -> Linear`` branch per delay, exported with ``round_delays=True``)
  -> N -> Linear(32, 10) -> N(readout), on flat ``(64,)`` inputs

with N an ``IF`` (decay 1) or ``LIF`` (decay 0.9) neuron, threshold 1, reset ``zero`` or ``subtract``.
Weights are drawn so that every layer fires (positive-mean weights), so a comparison is not vacuous; a recurrent
weight is drawn around zero (``N(0, 0.5^2 / 32)``), so the feedback both excites and inhibits; delays are drawn
uniformly from 0 .. 3 steps.
``sample_input(family, steps, batch, seed)`` -> Bernoulli spike trains ``[T, B, *input_shape(family)]`` at
rates in [0, 0.5).
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.containers import ResidualBlock
from deepspike.layers.delays import DelayedLinear
from deepspike.layers.readout import SpikeRateReadout
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.rate_network import RateNetwork
from deepspike.neurons.modules import IF, LIF

FAMILIES = ("dense", "conv", "pool", "residual", "recurrent", "delayed")
NEURONS = ("IF", "LIF")
RESETS = ("zero", "subtract")
INPUT_SHAPE = (1, 8, 8)
LIF_DECAY = 0.9
DELAYS = 4
"""``D`` of the ``delayed`` family: delays of 0 .. 3 steps."""


def _neuron(kind: str, reset: str) -> nn.Module:
    return IF(threshold=1.0, reset=reset) if kind == "IF" else LIF(decay=LIF_DECAY, threshold=1.0, reset=reset)


def _layers(family: str) -> list[nn.Module]:
    """The weighted/pooling layers of ``family`` with None where a neuron goes."""
    if family == "dense":
        return [nn.Linear(64, 32), None, nn.Linear(32, 10)]
    if family == "recurrent":
        return [nn.Linear(64, 32), "recurrent", nn.Linear(32, 10)]
    if family == "delayed":
        return [DelayedLinear(64, 32, DELAYS, bias=True), None, nn.Linear(32, 10)]
    if family == "conv":
        return [nn.Conv2d(1, 4, 3, padding=1), None, nn.Flatten(), nn.Linear(256, 10)]
    if family == "pool":
        return [nn.Conv2d(1, 4, 3, padding=1), None, nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10)]
    if family == "residual":
        return [nn.Conv2d(1, 4, 3, padding=1), None, "residual", nn.Flatten(), nn.Linear(256, 10)]
    raise ConfigError(f"unknown net family {family!r}; choose from {', '.join(FAMILIES)}")


def build(family: str, neuron: str = "LIF", reset: str = "zero", seed: int = 0) -> RateNetwork:
    """The seeded net of ``family`` (module docstring) in eval mode."""
    if neuron not in NEURONS or reset not in RESETS:
        raise ConfigError(f"neuron must be one of {NEURONS} and reset one of {RESETS}")
    torch.manual_seed(seed)
    body: list[nn.Module] = []
    for layer in _layers(family):
        if layer is None:
            body.append(_neuron(neuron, reset))
        elif layer == "recurrent":  # the Linear before it becomes its feed-forward layer
            layer = RecurrentSpiking(body.pop(), _neuron(neuron, reset), 32)
            nn.init.normal_(layer.recurrent.module.weight, 0.0, 0.5 / 32 ** 0.5)
            body.append(layer)
        elif layer == "residual":
            convs = [_drawn(nn.Conv2d(4, 4, 3, padding=1)) for _ in range(2)]
            block_body = nn.Sequential(TimeDistributed(convs[0]), _neuron(neuron, reset), TimeDistributed(convs[1]))
            body.append(ResidualBlock(block_body, nn.Sequential(), _neuron(neuron, reset)))
        elif isinstance(layer, DelayedLinear):  # a layer over the whole sequence: not TimeDistributed
            body.append(_drawn(layer))
        else:
            body.append(TimeDistributed(_drawn(layer)))
    readout = SpikeRateReadout(_neuron(neuron, reset))
    return RateNetwork(nn.Identity(), nn.Sequential(*body), readout, timesteps=1).eval()


def _drawn(layer: nn.Module) -> nn.Module:
    """A conv/linear layer with positive-mean weights ``N(1.5 / fan_in, 0.6^2 / fan_in)`` and small biases; a
    delayed layer also with delays drawn from 0 .. D - 1 and rounded (``round_delays_``)."""
    if isinstance(layer, nn.Linear | nn.Conv2d | DelayedLinear):
        fan_in = layer.weight[0].numel()
        with torch.no_grad():
            layer.weight.normal_(1.5 / fan_in, 0.6 / fan_in ** 0.5)
            layer.bias.uniform_(-0.05, 0.05)
    if isinstance(layer, DelayedLinear):
        with torch.no_grad():
            layer.position.copy_(torch.randint(0, layer.max_delay, layer.position.shape))
        layer.round_delays_()
    return layer


def input_shape(family: str) -> tuple[int, ...]:
    """One step of ``family``'s input without batch: ``(64,)`` for ``dense``, ``recurrent`` and ``delayed``, else
    ``(1, 8, 8)``."""
    return (64,) if family in ("dense", "recurrent", "delayed") else INPUT_SHAPE


def sample_input(family: str, steps: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Bernoulli spike trains ``[steps, batch, *input_shape(family)]``; each pixel has its own rate in [0, 0.5)."""
    g = torch.Generator().manual_seed(seed)
    shape = input_shape(family)
    rates = torch.rand((1, batch, *shape), generator=g) * 0.5
    return (torch.rand((steps, batch, *shape), generator=g) < rates).float()


def reference_spikes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """deepspike's own simulation: the output neurons' spikes ``[T, B, K]`` for input spikes ``x`` (the
    readout's neurons, or a converted net's output IF layer) - what an exported graph's Output carries."""
    output = getattr(model, "output", None)
    neuron = output if isinstance(output, nn.Module) else getattr(getattr(model, "readout", None), "neuron", None)
    if neuron is None:
        raise ConfigError("spike comparison needs a net whose output layer spikes (rate or vote readout)")
    with torch.no_grad():
        return neuron(model.body(x))
