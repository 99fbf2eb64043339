"""What a competitive STDP net costs: the summary by hand, and the tally against the kernel run sample by sample."""

import numpy as np
import pytest
import torch

from deepspike.analysis.competitive import activity_summary, competitive_activity, competitive_layer, competitive_mesh
from deepspike.layers import wta_kernels
from deepspike.layers.wta_stdp import CompetitiveStdpLayer, Presentation, PresentationTally
from deepspike.methods.wta_stdp import WtaStdpOptions, wta_constants
from deepspike.models.energy import get_energy_preset
from deepspike.training.evaluate import EVAL_SEED


def _layer(neurons=5, steps=50, max_presentations=3) -> CompetitiveStdpLayer:
    p = Presentation(steps=steps, rest_ms=150.0, rate_max=300.0, rate_step=150.0, min_spikes=5,
                     max_presentations=max_presentations, weight_sum=1.0, label_window=100)
    return CompetitiveStdpLayer(16, neurons, 2, wta_constants(WtaStdpOptions()), p, 0.3, 20.0, 20)


def test_the_summary_by_hand():
    """N = 5, S = 50; 2 samples, 3 shows, 100 input, 10 excitatory and 6 inhibitory spikes: ACs = (100 * 5 + 10 * 1
    + 6 * 4) / 2 = 267 per sample, latency 50 * 3 / 2 = 75 steps, sparsity (4 + 3) / (2 * 5 * 2) = 0.35, excitatory
    rate 10 / (3 * 50 * 5) spikes per neuron and step."""
    tally = PresentationTally(samples=2, shows=3, input_spikes=100, excitatory_spikes=10, inhibitory_spikes=6,
                              active_excitatory=4, active_inhibitory=3)
    s = activity_summary(_layer(), tally)
    assert s["acs_per_sample"] == s["synops_per_sample"] == 267.0 and s["macs_per_sample"] == 0.0
    assert s["timesteps"] == 75.0 and s["shows_per_sample"] == 1.5
    assert s["input_spikes_per_sample"] == 50.0 and s["neuron_spikes_per_sample"] == 8.0
    assert s["spikes_per_sample"] == 58.0 and s["sparsity"] == pytest.approx(0.35)
    exc, inh = s["layers"]
    assert (exc["name"], exc["spikes_per_sample"], exc["sparsity"]) == ("excitatory", 5.0, 0.4)
    assert exc["rate"] == pytest.approx(10 / 750) and inh["rate"] == pytest.approx(6 / 750)
    assert [syn["acs_per_sample"] for syn in s["synapses"]] == [250.0, 5.0, 12.0]


def test_the_tally_agrees_with_the_kernel_sample_by_sample():
    """One show per sample: the spikes the analysis counts are those of ``present`` run on each sample's raster,
    drawn on the evaluation's seeded stream (the same draws as the accuracy's)."""
    torch.manual_seed(0)
    layer = _layer(max_presentations=1)
    layer.weight.mul_(6.0)
    x = torch.rand(6, 16)
    s = competitive_activity(layer, [(x[:4], None), (x[4:], None)])
    torch.manual_seed(EVAL_SEED)
    rasters = np.concatenate([layer._rasters(x[:4].double(), 0), layer._rasters(x[4:].double(), 0)])
    w, theta, delays = (a.copy() for a in layer._kernel_arrays())
    counts = np.stack([wta_kernels.present(w, theta, delays, r, False, layer.constants) for r in rasters])
    assert counts[:, 0].sum() > 6 and counts[:, 1].sum() > 0  # the case fires both populations
    assert s["input_spikes_per_sample"] == rasters.sum() / 6
    assert s["layers"][0]["spikes_per_sample"] == counts[:, 0].sum() / 6
    assert s["layers"][1]["spikes_per_sample"] == counts[:, 1].sum() / 6
    assert s["sparsity"] == (counts > 0).sum() / (2 * 5 * 6)


def test_the_layer_is_found_in_a_model():
    layer = _layer()
    assert competitive_layer(layer) is layer
    assert competitive_layer(torch.nn.Sequential(torch.nn.Flatten(), layer)) is layer
    assert competitive_layer(torch.nn.Linear(2, 2)) is None


def _replayed(layer, chunks):
    """Per sample: input, excitatory and inhibitory spikes and shows, replaying the scoring by hand: each chunk's
    rasters drawn show by show for the samples still weak (fewer than 5 excitatory spikes), each raster run alone
    through ``present``."""
    torch.manual_seed(EVAL_SEED)
    w, theta, delays = (a.copy() for a in layer._kernel_arrays())
    totals = np.zeros(4)
    for x in chunks:
        weak = list(range(len(x)))
        for show in range(layer.presentation.max_presentations):
            rasters = layer._rasters(x[weak].double(), show)
            counts = [wta_kernels.present(w, theta, delays, r, False, layer.constants) for r in rasters]
            totals += [rasters.sum(), sum(c[0].sum() for c in counts), sum(c[1].sum() for c in counts), len(weak)]
            weak = [i for i, c in zip(weak, counts, strict=True) if c[0].sum() < layer.presentation.min_spikes]
            if not weak:
                break
    return totals / sum(len(x) for x in chunks)


@pytest.mark.parametrize("scale", [3.0, 7.0])
def test_repeated_shows_are_counted_as_a_replay_by_hand_counts_them(scale):
    torch.manual_seed(0)
    layer = _layer(max_presentations=3)
    layer.weight.mul_(scale)
    x = torch.rand(20, 16)
    s = competitive_activity(layer, [(x[:12], None), (x[12:], None)])
    inputs, exc, inh, shows = _replayed(layer, [x[:12], x[12:]])
    assert shows > 1.2  # weak answers were shown again
    assert s["input_spikes_per_sample"] == pytest.approx(inputs, rel=1e-12)
    assert s["layers"][0]["spikes_per_sample"] == pytest.approx(exc, rel=1e-12)
    assert s["layers"][1]["spikes_per_sample"] == pytest.approx(inh, rel=1e-12)
    assert s["shows_per_sample"] == pytest.approx(shows) and s["timesteps"] == pytest.approx(50 * shows)


def test_the_mesh_maps_both_populations_by_hand():
    """N = 5 neurons, I = 16 inputs, PEs of 4 neurons and 30 weights. Excitatory: 16 * 5 input and 5 * 4 inhibitory
    synapses, C = max(ceil(5 / 4), ceil(100 / 30)) = 4, reached by 50 input + 3 inhibitory spikes: 212 packets;
    inhibitory: 5 synapses, C = max(2, 1) = 2, reached by 5 excitatory spikes: 10 packets. 6 PEs, a 3 x 3 grid."""
    tally = PresentationTally(samples=2, shows=3, input_spikes=100, excitatory_spikes=10, inhibitory_spikes=6,
                              active_excitatory=4, active_inhibitory=3)
    layer = _layer()
    activity = activity_summary(layer, tally)
    mesh = competitive_mesh(layer, activity, pe_neurons=4, pe_weights=30, preset=get_energy_preset("45nm_fp32"))
    exc, inh = mesh["layers"]
    assert (exc["weights"], exc["pes"], exc["packets_per_sample"]) == (100, 4, 212.0)
    assert (inh["weights"], inh["pes"], inh["packets_per_sample"]) == (5, 2, 10.0)
    assert (mesh["total_pes"], mesh["grid_side"], mesh["packets_per_sample"]) == (6, 3, 222.0)
    assert mesh["energy_pj"] == pytest.approx(267.0 * 0.9)  # 267 ACs per sample at 0.9 pJ, no spike price


def test_the_neurons_updates_are_priced_per_simulated_step_by_hand():
    """N = 5, S = 50, 3 shows of 2 samples: 75 simulated steps per sample. With the layer's (5, 5) excitatory and
    (3, 3) inhibitory (MACs, ACs) per neuron and step: (5 + 3) * 5 * 75 = 3000 of each. With made-up counts
    (7, 5) and (3, 2), MACs and ACs kept apart: (7 + 3) * 5 * 75 = 3750 MACs, (5 + 2) * 5 * 75 = 2625 ACs."""
    tally = PresentationTally(samples=2, shows=3, input_spikes=100, excitatory_spikes=10, inhibitory_spikes=6,
                              active_excitatory=4, active_inhibitory=3)
    layer = _layer()
    s = activity_summary(layer, tally)
    assert (s["update_macs_per_sample"], s["update_acs_per_sample"]) == (3000.0, 3000.0)
    layer.update_ops = lambda: ((7, 5), (3, 2))
    s = activity_summary(layer, tally)
    assert (s["update_macs_per_sample"], s["update_acs_per_sample"]) == (3750.0, 2625.0)
