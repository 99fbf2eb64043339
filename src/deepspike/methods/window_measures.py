"""Spiking measures of a windowed TTFS network (``methods.window_network``) over batches.

Absolute spike times are each layer's window start plus its offsets (windows in forward order: input
``[0, T_0]``, hidden layer ``n`` from ``T_0 + ... + T_{n-1}``, output last); the output neurons' spikes
are the decision (``ttfs.measures``: latency = first output spike, spiking fractions, hidden spikes before
the decision, dead neurons). Added here:

* ``spikes_per_neuron``: spikes of the hidden and output neurons per neuron and sample (each fires at most
  once; the input layer not included), ``input_spikes``: input spikes per sample;
* ``saturated_fraction``: hidden spikes at their window start (value clipped by the window);
* ``synaptic_ops``: per sample, each conv/linear input that is not 0 times its fan-out (``C_out k^2 / s^2``
  for a conv, ``M`` for a linear layer): the accumulations the spikes cause;
* ``total_time``: the end of the output window, ``sum`` of all windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import islice

import torch
from torch import nn

from deepspike.methods.window_network import WindowNetwork, recording
from deepspike.ttfs.measures import TTFSMeasures


class _SynapticOps:
    """Forward pre-hooks on every conv/linear layer adding ``nonzero inputs x fan-out``."""

    def __init__(self, model: nn.Module) -> None:
        self.total = 0.0
        self.handles = [m.register_forward_pre_hook(self._count) for m in model.modules()
                        if isinstance(m, (nn.Conv2d, nn.Linear))]

    def _count(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if isinstance(module, nn.Conv2d):
            fan_out = module.out_channels * math.prod(module.kernel_size) / math.prod(module.stride)
        else:
            fan_out = module.out_features
        self.total += float((inputs[0] != 0).sum()) * fan_out

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@torch.no_grad()
def window_measures(model: WindowNetwork, batches: Iterable, max_batches: int | None = None) -> dict[str, float]:
    """Run ``model`` in eval mode over the first ``max_batches`` of ``batches`` of ``(x, y)``; the measures."""
    layers = model.neuron_layers()
    measures = TTFSMeasures([f"hidden{i + 1}" for i in range(len(layers))] + ["output"])
    windows = model.windows()
    starts = [sum(windows[: i + 1]) for i in range(len(windows) - 1)]  # hidden layers and output
    samples = input_spikes = saturated = hidden_spikes = 0.0
    ops = _SynapticOps(model)
    was_training = model.training
    model.eval()
    try:
        with recording(model):
            for x, _y in islice(batches, max_batches):
                model(x)
                hidden = [start + m.last_offsets for start, m in zip(starts, layers)]
                measures.add(hidden, starts[-1] + model.readout.last_offsets)
                samples += x.shape[0]
                input_spikes += float(torch.isfinite(model.input.last_offsets).sum())
                saturated += sum(float((m.last_offsets == 0).sum()) for m in layers)
                hidden_spikes += sum(float(torch.isfinite(m.last_offsets).sum()) for m in layers)
    finally:
        ops.close()
        model.train(was_training)
    result = measures.result()
    result["spikes_per_neuron"] = result.pop("spiking_fraction")
    result.update(input_spikes=input_spikes / max(samples, 1), synaptic_ops=ops.total / max(samples, 1),
                  saturated_fraction=saturated / hidden_spikes if hidden_spikes else 0.0, total_time=sum(windows))
    return result
