"""Start a recipe's learnable (PLIF / learnt-threshold) neuron layer from a NIR file's neurons (``deploy.nir_init``).

A file's IF / LIF neurons may have constants that differ between layers, channels or neurons; a recipe's
``LearnableLIF`` (``method.neuron=plif``, ``learn_threshold``, ``neuron_params``) learns its decay
``k = 1 - sigmoid(w)`` and threshold at one granularity: per layer ``()``, per channel ``[C]`` or per neuron. The
file's values start them there (``w = log((1 - k) / k)``); a learnt decay scales the layer's input by ``1 - k``, so
the weighted layer straight before it is divided by ``1 - k`` per output channel (:func:`channel_gain`, shared
with ``nir_init``'s input-gain folding). A constant that is not learnt must equal the file's (relative ``RTOL``).
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.modules import SpikingNeuron

WEIGHTED = (nn.Linear, nn.Conv2d)
RTOL = 1e-5  # a decay read back from a float32 tau


def channel_gain(gain: torch.Tensor | None, channels: int, rank: int, where: str) -> torch.Tensor:
    """The gain as one value per output channel ``[channels]``; a gain that varies within a channel is an error.
    ``rank``: the layer's output dimensions per sample (1: ``[N]`` of a Linear, 3: ``[C, H, W]`` of a conv); the gain
    multiplies that output as torch broadcasts, aligned on the right (a ``[W]`` gain of a conv scales its columns)."""
    if gain is None:
        return torch.ones(channels)
    if gain.dim() > rank:
        raise ConfigError(f"{where}: the file's input gain {list(gain.shape)} has more dimensions than the layer's "
                          f"output ({rank})")
    g = gain.reshape((1,) * (rank - gain.dim()) + tuple(gain.shape))
    if g.shape[0] not in (1, channels):
        raise ConfigError(f"{where}: the file's input gain {list(gain.shape)} does not fit the layer's {channels} "
                          "channels")
    per_channel = g.expand(channels, *g.shape[1:]).reshape(channels, -1)
    if not bool((per_channel == per_channel[:, :1]).all()):
        raise ConfigError(f"{where}: the file's neurons have an input gain that varies within a channel "
                          f"({list(gain.shape)}), which the layer's weights cannot hold")
    return per_channel[:, 0]


def start_learnable(mine: LearnableLIF, its: nn.Module, previous: nn.Module | None, where: str) -> None:
    """A recipe's PLIF / learnt-threshold layer (``method.neuron=plif``, ``learn_threshold``, ``neuron_params``)
    started from the file's neurons, whose constants may differ between layers, channels or neurons: its learnt
    decay ``k = 1 - sigmoid(w)`` (``w = log((1 - k) / k)``) and threshold take the file's at the layer's
    granularity; a learnt decay scales the input by ``1 - k``, which the weights straight before it undo
    (``W / (1 - k)`` per output channel). What is not learnt must equal the file's."""
    k, th, reset = neuron_tensors(its, where)
    if reset != mine.fixed.reset:
        raise ConfigError(f"{where}: the file's neurons reset by {reset!r}, the recipe's by {mine.fixed.reset!r}: set "
                          f"method.reset={reset}")
    if mine.w is not None:
        k = granular(k, mine, "decay", where)
        if not bool(((k > 0) & (k < 1)).all()):
            raise ConfigError(f"{where}: a learnt decay lies in (0, 1), the file's neurons have {float(k.min()):.6g} "
                              f"to {float(k.max()):.6g}")
        mine.w.copy_(torch.log((1 - k) / k))
        if not isinstance(previous, WEIGHTED):
            raise ConfigError(f"{where}: a PLIF layer scales its input by 1 - k, which only a weighted layer straight "
                              "before it can undo")
        rank = previous.weight.dim() - 1  # the layer's output dimensions: 1 (Linear) or 3 (conv)
        c = 1 - (k.reshape(-1, *([1] * (rank - 1))) if mine.channels else k)  # per channel: [C, 1, 1] on a conv
        c = channel_gain(c, previous.weight.shape[0], rank, where)
        previous.weight.div_(c.reshape(-1, *([1] * (previous.weight.dim() - 1))))
        if previous.bias is not None:
            previous.bias.div_(c)
    elif not bool(torch.isclose(k, torch.tensor(mine.fixed.decay), rtol=RTOL, atol=0.0).all()):
        raise ConfigError(f"{where}: the file's neurons have decays {float(k.min()):.6g} to {float(k.max()):.6g}, the "
                          f"recipe's {mine.fixed.decay:.6g} (method.decay; method.neuron=plif learns one per "
                          "method.neuron_params)")
    if mine.threshold is not None:
        mine.threshold.copy_(granular(th, mine, "threshold", where))
    elif not bool(torch.isclose(th, torch.tensor(mine.fixed.threshold), rtol=RTOL, atol=0.0).all()):
        raise ConfigError(f"{where}: the file's thresholds are {float(th.min()):.6g} to {float(th.max()):.6g}, the "
                          f"recipe's {mine.fixed.threshold:.6g} (method.threshold; method.learn_threshold=true learns "
                          "them)")


def neuron_tensors(its: nn.Module, where: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(k, th, reset)`` of the file's neuron layer without a synaptic current (one per layer ``()``, or broadcasting
    against its neurons)."""
    if isinstance(its, SpikingNeuron):
        return torch.tensor(its.params.decay), torch.tensor(its.params.threshold), its.params.reset
    if isinstance(its, HeterogeneousLIF) and its.syn_decay is None:
        return its.decay.clone(), its.threshold.clone(), its.fixed.reset
    raise ConfigError(f"{where}: a learnable (PLIF) layer of the recipe takes the file's IF/LIF neurons, not "
                      f"{type(its).__name__}")


def granular(values: torch.Tensor, mine: LearnableLIF, what: str, where: str) -> torch.Tensor:
    """``values`` as the learnable layer's parameter: one per layer ``()``, per channel ``[C]`` or per neuron
    (``mine.neurons``); a one-line ``ConfigError`` when they differ within what shares one value."""
    if mine.neurons is not None:
        try:
            return torch.broadcast_to(values, mine.neurons).clone()
        except RuntimeError:
            raise ConfigError(f"{where}: the file's {what} {list(values.shape)} does not fit the layer's neurons "
                              f"{list(mine.neurons)}") from None
    flat = values.reshape(-1)
    if bool((flat == flat[0]).all()):
        return flat[0].expand(mine.channels).clone() if mine.channels else flat[0].clone()
    if mine.channels and values.dim() and values.shape[0] == mine.channels:
        rows = values.reshape(mine.channels, -1)
        if bool((rows == rows[:, :1]).all()):
            return rows[:, 0].clone()
    finer = "neuron" if mine.channels else "channel or neuron"
    raise ConfigError(f"{where}: the file's {what} differs within a {'channel' if mine.channels else 'layer'}: set "
                      f"method.neuron_params={finer}")
