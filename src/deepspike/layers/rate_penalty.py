"""An activity regulariser on the firing rates of a rate-coded network's hidden spiking layers (``method.rate_reg``).

For hidden layer l with spikes ``s^l [T, B, N_l]`` (``N_l`` neurons per sample, a map's ``C*H*W``) the per-sample
rate of neuron i is ``r^l[b, i] = (1/T) sum_t s^l_t[b, i]``, in [0, 1]; the penalty is ``weight * sum_l P(r^l)``:

* ``l1``:   ``P = (1/(B N_l)) sum_{b,i} r[b, i]``, the layer's mean rate (rates are >= 0, so this is their L1
  norm; snnTorch's ``functional.reg.l1_rate_sparsity`` is ``Lambda * sum_{t,b,i} s`` = this with
  ``weight = Lambda T B N_l``);
* ``l2``:   ``P = (1/(B N_l)) sum_{b,i} r[b, i]^2`` (SpyTorch's L2 on the spikes per neuron, Zenke's tutorials);
* ``band``: ``P = (1/(B N_l)) sum_{b,i} relu(low - r[b, i])^2 + (1/B) sum_b relu(rbar[b] - high)^2`` with
  ``rbar[b] = (1/N_l) sum_i r[b, i]``: Zenke & Vogels' (Neural Computation 2021) pair, a per-neuron lower bound
  (no silent neurons) and an upper bound on the layer's mean activity (sparsity), hinge-squared as in their stork
  library's ``LowerBoundL2`` / ``UpperBoundL2``, written on rates instead of counts so that T does not set the
  bounds (``low = 0`` drops the lower term).

Rates are collected, differentiable, during the training forward pass by ``HiddenRates``: a forward pre-hook on
the network (what a train-mode call of it runs first) hooks every outermost spiking neuron of the body
(``layers.neuron_kinds``; not the readout's) and opens the collection; the network's forward hook closes it; eval
calls take the neuron hooks off again. Nothing is hooked unless a regulariser is chosen. A hooked neuron runs on its
own (``layers.spiking_sequential`` fuses only unhooked neurons with the batch-norm before and the pooling after
them; the neuron's own fused kernel still runs), so training costs that fusion; evaluation keeps it.
A neuron called several times in one call of the network (time in segments, ``train.temporal_grad=checkpoint``;
a recurrent layer's one-step calls, ``layers.recurrent``) adds up its counts and steps (checkpoint's replays in
backward find the collection closed); the online modes (sltt, ottt, eprop), which never call the network on all T
steps, are refused when the run is set up (``training.temporal_grad``; ``HiddenRates.take`` still refuses a
call it did not see).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX
from deepspike.layers.neuron_kinds import is_spiking_neuron
from deepspike.layers.owned_hooks import add_owned_hook, remove_owned_hooks
from deepspike.layers.recurrent import RecurrentSpiking

RATE_REGS = ("none", "l1", "l2", "band")


def check_rate_reg(kind: str, weight: float, low: float, high: float) -> None:
    """One-line ``ConfigError`` for a bad ``method.rate_reg`` and its ``rate_reg_weight/low/high``."""
    if kind not in RATE_REGS:
        raise ConfigError(f"bad value {kind!r} for method.rate_reg; valid: {', '.join(RATE_REGS)}")
    if not 0 <= weight <= FLOAT32_MAX:  # the penalty is float32: a larger weight made the loss inf
        raise ConfigError(f"bad value {weight!r} for method.rate_reg_weight: expected >= 0 and at most float32's "
                          f"{FLOAT32_MAX:.4g}")
    if not 0.0 <= low <= high <= 1.0:
        raise ConfigError(f"bad values for method.rate_reg_low/rate_reg_high: expected 0 <= low <= high <= 1, got "
                          f"{low!r}/{high!r}")


def rate_penalty(rates: list[torch.Tensor], kind: str, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """``sum_l P(r^l)`` (module docstring) of the per-sample rates ``r^l [B, N_l]`` of each hidden layer; a layer with
    no samples (``B = 0``) adds 0."""
    terms = []
    for r in rates:
        if r.numel() == 0:  # an empty batch (a torchrun rank's share of a short last batch): 0, still in the graph
            terms.append(r.sum())
        elif kind == "l1":
            terms.append(r.mean())
        elif kind == "l2":
            terms.append(r.square().mean())
        elif kind == "band":
            terms.append(F.relu(low - r).square().mean() + F.relu(r.mean(dim=1) - high).square().mean())
        else:
            raise ConfigError(f"bad value {kind!r} for method.rate_reg; valid: {', '.join(RATE_REGS[1:])}")
    return torch.stack(terms).sum() if terms else torch.zeros(())


def hidden_neurons(body: nn.Module) -> list[nn.Module]:
    """The outermost spiking neurons of ``body`` in registration order (a neuron inside another is not one more); a
    recurrent layer stands for its neuron (its output is the neuron's spikes, and a hook on the neuron itself would
    make it step its loop, ``layers.recurrent``)."""
    found: list[tuple[str, nn.Module]] = []
    for name, m in body.named_modules():
        spiking = is_spiking_neuron(m) or isinstance(m, RecurrentSpiking)
        if spiking and not any(name.startswith(outer + ".") for outer, _ in found):
            found.append((name, m))
    return [m for _, m in found]


class HiddenRates:
    """Differentiable per-layer spike counts of the last training call of a network (module docstring).

    ``attach(net, body)`` installs it; ``take()`` returns the rates ``[B, N_l]`` of each hidden layer of the last
    training call and empties it.
    """

    def __init__(self, neurons: list[nn.Module]) -> None:
        self.neurons = neurons
        self._counts: list[list[torch.Tensor]] = [[] for _ in neurons]  # per layer: counts [B, N_l] per call
        self._steps = [0] * len(neurons)
        self._hooked = False
        self._open = False
        self._ready = False

    @classmethod
    def attach(cls, net: nn.Module, body: nn.Module) -> HiddenRates:
        """A collector of the hidden neurons of ``body`` whose hooks follow the calls of ``net``."""
        probe = cls(hidden_neurons(body))
        net.register_forward_pre_hook(probe._begin)
        net.register_forward_hook(probe._end)
        return probe

    def _begin(self, net: nn.Module, args) -> None:
        for counts in self._counts:
            counts.clear()
        self._steps = [0] * len(self.neurons)
        self._ready = False
        self._open = net.training and torch.is_grad_enabled()
        if net.training != self._hooked:  # kept through training: checkpoint replays run what the forward ran
            self._hook_neurons(net.training)

    def _hook_neurons(self, on: bool) -> None:
        """Hook the neurons (``on``) or take this collector's hooks off them (``layers.owned_hooks``)."""
        for i, m in enumerate(self.neurons):
            if on:
                add_owned_hook(m, self._record, i)
            else:
                remove_owned_hooks(m, self)
        self._hooked = on

    def _end(self, net: nn.Module, args, output) -> None:
        self._ready, self._open = self._open, False

    def _record(self, layer: int, module: nn.Module, args, spikes: torch.Tensor) -> None:
        if self._open:
            self._counts[layer].append(spikes.flatten(2).sum(dim=0, dtype=torch.float32))  # [T, B, ...] -> [B, N]
            self._steps[layer] += spikes.shape[0]

    def take(self) -> list[torch.Tensor]:
        """The rates ``r^l = counts / T`` ``[B, N_l]`` of the hidden layers in the last training call, then empty."""
        if not self._ready:
            raise ConfigError("method.rate_reg needs the network called on all T steps of a batch in training "
                              "(train.temporal_grad bptt or checkpoint; sltt, ottt and eprop run one step at a time)")
        self._ready = False
        rates = [sum(counts) / steps for counts, steps in zip(self._counts, self._steps, strict=True) if steps]
        for counts in self._counts:
            counts.clear()
        return rates
