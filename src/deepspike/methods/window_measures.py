"""Spiking measures of a windowed TTFS network (``methods.window_network``) over batches.

Absolute spike times are each layer's window start plus its offsets (windows in forward order: input
``[0, T_0]``, hidden layer ``n`` from ``T_0 + ... + T_{n-1}``, output last); the output neurons' spikes
are the decision (``ttfs.measures``: latency = first output spike, spiking fractions, hidden spikes before
the decision, dead neurons). Added here:

* ``spikes_per_neuron``: spikes of the hidden and output neurons per neuron and sample (each fires at most
  once; the input layer not included), ``input_spikes``: input spikes per sample;
* ``saturated_fraction``: hidden spikes at their window start (value clipped by the window);
* ``synaptic_ops``: per sample, the accumulations the spikes cause: each spike times its exact fan-out (the
  activity recorder's count, ``layers.activity_recorder``, as ``deepspike analyze`` reports it);
* ``total_time``: the end of the output window, ``sum`` of all windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import torch

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.methods.window_network import WindowNetwork, recording
from deepspike.ttfs.measures import TTFSMeasures


@torch.no_grad()
def window_measures(model: WindowNetwork, batches: Iterable, max_batches: int | None = None) -> dict[str, float]:
    """Run ``model`` in eval mode over the first ``max_batches`` of ``batches`` of ``(x, y)``; the measures."""
    layers = model.neuron_layers()
    measures = TTFSMeasures([f"hidden{i + 1}" for i in range(len(layers))] + ["output"])
    samples = input_spikes = saturated = hidden_spikes = 0.0
    ops = ActivityRecorder(model, codings=(), outputs=False, operations=True)
    was_training = model.training
    model.eval()
    try:
        with recording(model), ops:
            for x, _y in islice(batches, max_batches):
                model(x)
                hidden = [m.start + m.last_offsets for m in layers]  # absolute times (starts set in eval)
                measures.add(hidden, model.readout.start + model.readout.last_offsets)
                samples += x.shape[0]
                input_spikes += float(torch.isfinite(model.encoder.last_offsets).sum())
                saturated += sum(float((m.last_offsets == 0).sum()) for m in layers)
                hidden_spikes += sum(float(torch.isfinite(m.last_offsets).sum()) for m in layers)
    finally:
        model.train(was_training)
    result = measures.result()
    result["spikes_per_neuron"] = result.pop("spiking_fraction")
    result["input_spikes"] = input_spikes / max(samples, 1)
    result["synaptic_ops"] = sum(r.acs for r in ops.synapses.values()) / max(samples, 1)
    result["saturated_fraction"] = saturated / hidden_spikes if hidden_spikes else 0.0
    result["total_time"] = sum(model.windows())
    return result
