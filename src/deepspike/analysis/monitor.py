"""``NetworkMonitor``: the activity of rate-coded and TTFS networks as per-sample totals and per-layer rows.

The recording is ``layers.activity_recorder.ActivityRecorder``'s (spikes ``[T, B, ...]`` of spiking neuron
modules, spike times ``[B, ...]`` of TTFS neuron layers, input spikes, decision times, and synaptic events
costing ``ops = sum_j 1[x_j event] F_j`` with ``F`` the fan-out, as ACs for spike inputs and MACs for
analog ones). Per layer: ``rate = spikes / neuron_steps`` (neuron_steps = neurons x steps x samples for
rate nets, neurons x samples for TTFS; a multi-spike neuron's count of ``k`` is ``k`` spikes, ``neurons.multi_spike``,
so its rate may exceed 1 spike a step) and ``sparsity`` = the fraction of (neuron, sample) pairs that fired.
Per-sample figures and ``sparsity`` divide by the recorder's ``samples`` (every network pass), not by a layer's own
``NeuronRecord.samples`` (the passes that reached it): the two are equal because every pass runs every neuron layer
(no net here exits early or branches around a layer); a net that did would need ``layer.samples`` for its rate-like
figures (sparsity), while spikes per sample over all samples stays the cost of an average inference.
"""

from __future__ import annotations

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.activity_records import NeuronRecord, SynapseRecord, update_totals


def layer_summary(layer: NeuronRecord, samples: int) -> dict:
    """One neuron layer's row: spikes per sample, rate and sparsity over ``samples`` samples."""
    n = max(1, samples)
    return {
        "name": layer.name,
        "coding": layer.coding,
        "neurons": layer.neurons,
        "spikes_per_sample": layer.spikes / n,
        "rate": layer.spikes / layer.neuron_steps if layer.neuron_steps else 0.0,
        "sparsity": layer.active / (layer.neurons * n) if layer.neurons else 0.0,
    }


def synapse_summary(synapse: SynapseRecord, samples: int) -> dict:
    """One synaptic layer's row: input events, ACs and MACs per sample."""
    n = max(1, samples)
    return {
        "name": synapse.name,
        "type": synapse.module_type,
        "events_per_sample": synapse.events / n,
        "acs_per_sample": synapse.acs / n,
        "macs_per_sample": synapse.macs / n,
    }


class NetworkMonitor(ActivityRecorder):
    """Context manager recording the activity of ``model``; then ``summary()`` and ``histograms()``. A TTFS average
    pool's neurons (one per window, zhou2021) are a layer of their own, as a spikebp pool's IF neurons are."""

    def __init__(self, model, **options) -> None:
        super().__init__(model, **{"pool_neurons": True, **options})

    def histograms(self) -> list[dict]:
        """Per spiking layer: ``step_counts`` (rate: spikes per sample at each step) or ``times`` (TTFS)."""
        n = max(1, self.samples)
        return [
            {
                "name": layer.name,
                "coding": layer.coding,
                "times": list(layer.times),
                "step_counts": [c / n for c in layer.step_counts],
            }
            for layer in self.layers.values()
            if layer.neurons
        ]

    def summary(self) -> dict:
        """Per-sample totals and per-layer dicts (JSON-ready), with ``update_totals``."""
        n = max(1, self.samples)
        layers = self.layers.values()
        neurons = sum(layer.neurons for layer in layers)
        active = sum(layer.active for layer in layers)
        hidden = sum(layer.spikes for layer in layers) / n
        acs = sum(s.acs for s in self.synapses.values()) / n
        macs = sum(s.macs for s in self.synapses.values()) / n
        decided = len(self.decision_times)
        return {
            "samples": self.samples,
            "timesteps": self.steps,
            "input_spikes_per_sample": self.input_spikes / n,
            "analog_input": self.analog_input,
            "neuron_spikes_per_sample": hidden,
            "spikes_per_sample": hidden + self.input_spikes / n,
            "sparsity": active / (neurons * n) if neurons else 0.0,
            "acs_per_sample": acs,
            "macs_per_sample": macs,
            "synops_per_sample": acs + macs,
            **update_totals(layers, n, tuple(self.readout_updates)),
            "decision_time_mean": sum(self.decision_times) / decided if decided else None,
            "undecided_fraction": self.undecided / n if self.decision_times or self.undecided else None,
            "layers": [layer_summary(layer, self.samples) for layer in layers if layer.neurons],
            "synapses": [synapse_summary(s, self.samples) for s in self.synapses.values()],
        }
