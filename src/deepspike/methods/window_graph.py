"""A ``WindowNetwork`` as explicit populations, synapse matrices and delays, for the event-driven simulator.

``event_stages(net, input_shape)`` walks the network's modules: every chain of linear modules between two
populations (conv, linear, batch-norm, average pooling, flatten, dropout; all in eval mode) becomes one synapse
matrix, its Jacobian ``[M, N]`` (exact: the chain is affine; its value at 0 is the bias); every ``WindowNeurons`` a
``NeuronStage``; every max pooling a ``RelayStage``; a residual junction's neurons get the body's synapses
and the shortcut's, delayed by the body's windows so both arrive in the window before the junction's.
Dense matrices: meant for small nets (tests, examples), not for a VGG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.containers import ResidualBlock
from deepspike.methods.window_network import WindowNetwork
from deepspike.ttfs.window_layers import WindowNeurons
from deepspike.ttfs.window_sim import NeuronStage, RelayStage, Synapses

LINEAR = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class _Cursor:
    """Where the walk is: the population feeding what follows, its per-sample shape, the linear modules
    applied since, and the end of the population's window."""

    population: int
    shape: tuple[int, ...]
    t_max: float
    chain: list[nn.Module] = field(default_factory=list)


class _Walk:
    def __init__(self, input_window: float) -> None:
        self.stages: list[NeuronStage | RelayStage] = []
        self.input_window = input_window

    def population(self) -> int:
        return len(self.stages) + 1  # populations 0 and 1 are the input halves

    def sequence(self, modules: nn.Module, cur: _Cursor) -> _Cursor:
        for m in modules.children() if isinstance(modules, nn.Sequential) else [modules]:
            cur = self.module(m, cur)
        return cur

    def module(self, m: nn.Module, cur: _Cursor) -> _Cursor:
        if isinstance(m, nn.Sequential):
            return self.sequence(m, cur)
        if isinstance(m, LINEAR):
            return _Cursor(cur.population, cur.shape, cur.t_max, [*cur.chain, m])
        if isinstance(m, WindowNeurons):
            return self.neurons(m, [(cur, 0.0)])
        if isinstance(m, nn.MaxPool2d):
            if cur.chain:
                raise ConfigError("max pooling after a linear layer has no single-spike relay; pool after a neuron")
            shape = tuple(m(torch.zeros(1, *cur.shape)).shape[1:])
            self.stages.append(RelayStage(cur.population, _earliest(m, cur.shape)))
            return _Cursor(self.population(), shape, cur.t_max)
        if isinstance(m, ResidualBlock):
            return self.residual(m, cur)
        raise ConfigError(f"{type(m).__name__} has no event-driven counterpart in a windowed TTFS network")

    def residual(self, block: ResidualBlock, cur: _Cursor) -> _Cursor:
        if cur.chain:
            raise ConfigError("a residual block must start at a population of spikes")
        body = self.sequence(block.body, cur)
        shortcut = self.sequence(block.shortcut, _Cursor(cur.population, cur.shape, cur.t_max))
        return self.neurons(block.act, [(body, 0.0), (shortcut, body.t_max - cur.t_max)])

    def neurons(self, m: nn.Module, sources: list[tuple[_Cursor, float]], fires: bool = True) -> _Cursor:
        synapses, bias, shape = [], 0.0, None
        for cur, delay in sources:
            weight, b, shape = _affine(cur.chain, cur.shape)
            bias = bias + b
            synapses += [Synapses(cur.population, weight, delay)]
            if cur.population == 0:  # the input's negative half: the same synapses with -w
                synapses += [Synapses(1, -weight, delay)]
        window, alpha = float(m.window), m.alpha
        self.stages.append(NeuronStage(synapses, bias, window, alpha, fires))
        return _Cursor(self.population(), shape, sources[0][0].t_max + window)


def event_stages(net: WindowNetwork, input_shape: tuple[int, ...]) -> list[NeuronStage | RelayStage]:
    """The stages of ``net`` (eval mode, windows calibrated) for ``ttfs.window_sim.simulate``."""
    walk = _Walk(float(net.encoder.window))
    cur = walk.sequence(net.body, _Cursor(0, tuple(input_shape), float(net.encoder.window)))
    walk.neurons(net.readout, [(cur, 0.0)], fires=False)
    return walk.stages


def _affine(chain: list[nn.Module], shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """``(W [M, N], b [M], output shape)`` of the affine map ``chain`` on flattened ``[N]`` inputs."""
    def run(v: torch.Tensor) -> torch.Tensor:
        x = v.reshape(1, *shape)
        for m in chain:
            x = m(x)
        return x.reshape(-1)

    dtype = next((p.dtype for m in chain for p in m.parameters()), torch.float64)
    zero = torch.zeros(int(torch.tensor(shape).prod()), dtype=dtype)
    with torch.no_grad():
        out = run(zero)
    weight = torch.autograd.functional.jacobian(run, zero)
    out_shape = tuple(_shape_after(chain, shape, dtype))
    return weight.detach(), out.detach(), out_shape


def _shape_after(chain: list[nn.Module], shape: tuple[int, ...], dtype: torch.dtype) -> torch.Size:
    x = torch.zeros(1, *shape, dtype=dtype)
    with torch.no_grad():
        for m in chain:
            x = m(x)
    return x.shape[1:]


def _earliest(pool: nn.MaxPool2d, shape: tuple[int, ...]):
    """``times [B, N] -> [B, N']``: the earliest spike of each pooling region (``-maxpool(-t)``)."""
    def relay(times: torch.Tensor) -> torch.Tensor:
        return -pool(-times.reshape(times.shape[0], *shape)).reshape(times.shape[0], -1)
    return relay
