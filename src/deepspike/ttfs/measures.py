"""Measures of a TTFS network's spiking (zhou2021 sparsity, zhang2021 Fig. 6 and Fig. 9).

Computed from the spike times of the TTFS neuron layers (``TTFSConv2d``/``TTFSLinear``, recorded by
``methods.ttfs_measures``); the last one is the output layer, the others are hidden. Per sample ``b``,
with ``t_out[b]`` the output times and the decision time ``T_b = min_k t_out[b, k]`` (first output spike):

* ``latency``: ``mean_b T_b`` over samples with an output spike; ``no_output_spike``: fraction without.
* ``spiking_fraction/<layer>``: fraction of the layer's neurons that spike, averaged over samples
  (zhou2021's "sparsity", 0.94 = 94% of neurons spiked); ``spiking_fraction``: over all neuron layers.
* ``hidden_before_decision``: fraction of hidden neurons with ``t < T_b``, averaged over samples
  (zhang2021 Fig. 6: "an output neuron spikes after only 48.6% of the hidden neurons have spiked");
  samples without an output spike count every spiking hidden neuron.
* ``dead_fraction/<layer>``, ``dead_fraction``: fraction of hidden neurons that spike for NO sample of
  the data seen (zhang2021 Fig. 9, logged each epoch gives the curve over training).
"""

from __future__ import annotations

import math

import torch

from deepspike.core.precision import at_least_float32


class TTFSMeasures:
    """Accumulate the measures over batches: ``add(hidden_times, output_times)``, then ``result()``.

    ``hidden_times``: list of per-layer times ``[B, ...]``; ``output_times``: ``[B, K]``.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names  # every neuron layer, the output layer last
        self.samples = 0
        self.latency_sum, self.latency_n = 0.0, 0
        self.spiking = [0.0] * len(names)  # sum over samples of the fraction spiking
        self.before = 0.0  # sum over samples of the hidden fraction spiked before the decision
        self.ever: list[torch.Tensor | None] = [None] * len(names)

    def add(self, hidden: list[torch.Tensor], output: torch.Tensor) -> None:
        layers = [*hidden, output]
        b = output.shape[0]
        decision = output.detach().min(dim=1).values  # [B], +inf when no output spike
        decision = decision.to(at_least_float32(decision.dtype))  # half times: summed in float32
        has_spike = torch.isfinite(decision)
        self.latency_sum += float(decision[has_spike].sum())
        self.latency_n += int(has_spike.sum())
        self.samples += b
        before_count = torch.zeros(b, dtype=torch.float64, device="cpu")  # whatever the default device
        hidden_n = 0
        for i, t in enumerate(layers):
            flat = t.detach().flatten(1)  # [B, ...] -> [B, neurons] (reshape(b, -1) failed on an empty batch)
            fired = torch.isfinite(flat)
            # exact integer counts on the times' device, divided in float64 on the CPU (MPS holds no float64)
            self.spiking[i] += float((fired.sum(1).cpu().double() / flat.shape[1]).sum())
            ever = fired.any(0)
            self.ever[i] = ever if self.ever[i] is None else (self.ever[i] | ever)
            if i < len(hidden):
                before_count += (flat < decision.unsqueeze(1)).sum(1).cpu()  # counts [B] from the times' device
                hidden_n += flat.shape[1]
        if hidden_n:
            self.before += float((before_count / hidden_n).sum())

    def result(self) -> dict[str, float]:
        """Flat dict of the measures (see the module doc); NaN where nothing was seen."""
        n = self.samples or math.nan  # no sample seen: every fraction over samples is NaN, not 0
        out: dict[str, float] = {
            "latency": self.latency_sum / self.latency_n if self.latency_n else math.nan,
            "no_output_spike": 1.0 - self.latency_n / n,
        }
        total_fired = 0.0
        total_neurons = 0
        for name, s, ever in zip(self.names, self.spiking, self.ever):
            out[f"spiking_fraction/{name}"] = s / n
            size = 0 if ever is None else ever.numel()
            total_fired += s / n * size
            total_neurons += size
        out["spiking_fraction"] = total_fired / total_neurons if total_neurons else math.nan
        hidden = list(zip(self.names[:-1], self.ever[:-1]))
        dead_total, hidden_total = 0, 0
        for name, ever in hidden:
            if ever is None or not self.samples:  # only empty batches: no neuron was seen silent
                continue
            dead = int((~ever).sum())
            out[f"dead_fraction/{name}"] = dead / ever.numel()
            dead_total += dead
            hidden_total += ever.numel()
        if hidden:
            out["hidden_before_decision"] = self.before / n
            out["dead_fraction"] = dead_total / hidden_total if hidden_total else math.nan
        return out
