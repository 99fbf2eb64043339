"""What a competitive STDP net (Diehl & Cook 2015, method ``wta_stdp``) costs per inference, as ``analyze`` reports.

The net simulates itself (``layers.wta_stdp``, one numba loop per sample), so no neuron module passes spikes that a
``NetworkMonitor`` could hook: the layer counts them (``PresentationTally``), every show of a sample included (a
weak answer is shown again louder, and hardware would run that show too). From the tally, per test sample:

- spikes: the input's Poisson spikes ``s_in``, the excitatory ``s_e`` and the inhibitory ``s_i`` spikes;
- synaptic operations, all accumulates (a spike adds its weight to a conductance): each input spike reaches all
  ``N`` excitatory neurons, each excitatory spike its one inhibitory partner, each inhibitory spike the other
  ``N - 1`` excitatory neurons: ``ACs = N s_in + s_e + (N - 1) s_i``;
- latency: the simulated steps, ``S`` per show times the shows (the rest between samples is not simulated);
- sparsity: the fraction of the ``2 N`` neurons that fired in a sample's response;
- the neurons' own updates at every simulated step: ``CompetitiveStdpLayer.update_ops`` (conductance-based neurons,
  (5 MACs, 5 ACs) excitatory and (3, 3) inhibitory per step), times ``N`` and the steps.

On the processing-element mesh (``analysis.hardware``'s rule, ``C = max(ceil(n / N_pe), ceil(w / W_pe))``) the net is
two populations: the ``N`` excitatory neurons with their ``I N`` input weights and the ``N (N - 1)`` inhibitory
synapses onto them (input and inhibitory spikes reach them), and the ``N`` inhibitory neurons with one synapse each
(excitatory spikes reach them); routed packets ``sum spikes_in C`` as for every net.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from deepspike.analysis.hardware import mesh_summary, pes_for_layer
from deepspike.layers.wta_stdp import CompetitiveStdpLayer, PresentationTally
from deepspike.models.energy import EnergyPreset
from deepspike.training.evaluate import EVAL_SEED, eval_pass


def competitive_layer(model: nn.Module) -> CompetitiveStdpLayer | None:
    """The ``CompetitiveStdpLayer`` of ``model`` (itself or a submodule), None if it has none."""
    return next((m for m in model.modules() if isinstance(m, CompetitiveStdpLayer)), None)


def competitive_activity(layer: CompetitiveStdpLayer, batches: list, seed: int = EVAL_SEED) -> dict[str, Any]:
    """The activity summary (the keys of ``NetworkMonitor.summary()``) of ``layer`` scoring ``batches`` (``(x, y)``
    pairs) on the seeded stream the accuracy is measured on (``eval_pass``): the same Poisson draws."""
    tally = PresentationTally()
    with eval_pass(layer, seed):
        for x, _ in batches:
            layer.responses(x, tally)
    return activity_summary(layer, tally)


def activity_summary(layer: CompetitiveStdpLayer, tally: PresentationTally) -> dict[str, Any]:
    """Per-sample spikes, synaptic operations and neuron updates (module docstring), latency in steps and
    per-population rows."""
    n, samples, steps = layer.neurons, max(1, tally.samples), layer.presentation.steps
    neuron_steps = max(1, tally.shows * steps * n)
    populations = (("excitatory", tally.excitatory_spikes, tally.active_excitatory),
                   ("inhibitory", tally.inhibitory_spikes, tally.active_inhibitory))
    layers = [{"name": name, "coding": "rate", "neurons": n, "spikes_per_sample": spikes / samples,
               "rate": spikes / neuron_steps, "sparsity": active / (n * samples)}
              for name, spikes, active in populations]
    fan_out = (("input -> excitatory", tally.input_spikes, n),
               ("excitatory -> inhibitory", tally.excitatory_spikes, 1),
               ("inhibitory -> excitatory", tally.inhibitory_spikes, n - 1))
    synapses = [{"name": name, "type": type(layer).__name__, "events_per_sample": events / samples,
                 "acs_per_sample": events * targets / samples, "macs_per_sample": 0.0}
                for name, events, targets in fan_out]
    neuron_spikes = (tally.excitatory_spikes + tally.inhibitory_spikes) / samples
    acs = sum(s["acs_per_sample"] for s in synapses)
    steps_per_neuron = tally.shows * steps / samples  # simulated steps per sample
    (exc_macs, exc_acs), (inh_macs, inh_acs) = layer.update_ops()
    return {
        "samples": tally.samples,
        "timesteps": steps * tally.shows / samples,
        "shows_per_sample": tally.shows / samples,
        "input_spikes_per_sample": tally.input_spikes / samples,
        "analog_input": False,
        "neuron_spikes_per_sample": neuron_spikes,
        "spikes_per_sample": neuron_spikes + tally.input_spikes / samples,
        "sparsity": (tally.active_excitatory + tally.active_inhibitory) / (2 * n * samples),
        "acs_per_sample": acs,
        "macs_per_sample": 0.0,
        "synops_per_sample": acs,
        "update_macs_per_sample": (exc_macs + inh_macs) * n * steps_per_neuron,
        "update_acs_per_sample": (exc_acs + inh_acs) * n * steps_per_neuron,
        "unpriced_update_layers": [],
        "decision_time_mean": None,
        "undecided_fraction": None,
        "layers": layers,
        "synapses": synapses,
    }


def competitive_mesh(layer: CompetitiveStdpLayer, activity: dict[str, Any], pe_neurons: int, pe_weights: int,
                     preset: EnergyPreset) -> dict[str, Any]:
    """The mesh mapping of the two populations (module docstring), in ``analysis.hardware.map_to_mesh``'s shape."""
    n, inputs = layer.neurons, layer.inputs
    exc, inh = activity["layers"]
    populations = (("excitatory", inputs + n, n, inputs * n + n * (n - 1),
                    activity["input_spikes_per_sample"] + inh["spikes_per_sample"]),
                   ("inhibitory", n, n, n, exc["spikes_per_sample"]))
    layers = []
    for name, fan_in, neurons, weights, spikes_in in populations:
        pes = pes_for_layer(neurons, weights, pe_neurons, pe_weights)
        layers.append({"name": name, "kind": "population", "inputs": fan_in, "neurons": neurons, "weights": weights,
                       "pes": pes, "grid_side": math.ceil(math.sqrt(pes)), "spikes_in_per_sample": spikes_in,
                       "packets_per_sample": spikes_in * pes})
    packets = sum(p["packets_per_sample"] for p in layers)
    return mesh_summary(layers, packets, pe_neurons, pe_weights, preset, activity)
