"""``xylo_layers``: which nets map onto Xylo's dense layers, and the one-line refusals."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from conformance.conftest import require
from conformance.test_chip_targets import _synaptic_net
from deepspike.cli import main
from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_modules import Integrator, NirNetwork, PerNeuronIntegrator
from deepspike.deploy.xylo import (
    _fanout_over,
    _scale_biases,
    _scale_unfed_neurons,
    neuron_settings,
    quantised_model,
    xylo_layers,
    xylo_report,
    xylo_spec,
)
from deepspike.deploy.xylosim import chip_config, xylo_simulate
from deepspike.layers.readout import MaxMembraneReadout, SpikeRateReadout
from deepspike.layers.spike_delay import SpikeDelay
from deepspike.layers.temporal_batchnorm import TemporalEffectiveBatchNorm
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import get_method
from deepspike.methods.rate_network import RateNetwork
from deepspike.models import create_architecture
from deepspike.neurons.modules import IF, LIF
from deepspike.neurons.multi_spike import MultiSpikeLIF, MultiSpikeSynapticLIF
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.synaptic import SynapticLIF
from deepspike.ttfs.layers import TTFSLinear


@pytest.mark.parametrize("readout", [Integrator(0.5), PerNeuronIntegrator(torch.tensor([0.5, 0.8, 0.9]))])
def test_an_imported_membrane_readout_is_named_as_one(readout):
    """An imported ``LI`` whose tau differs between neurons (``PerNeuronIntegrator``) got the generic "Xylo runs
    dense nets ... only" line, where the shared-decay ``Integrator`` got the membrane-readout one."""
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 3)), readout),
                     {}, (8,))
    with pytest.raises(ConfigError, match=r"^xylo: a membrane readout cannot map: Xylo's outputs are spiking neurons$"):
        xylo_layers(net)


def test_a_max_membrane_readout_is_refused_for_xylo_not_for_a_nir_export():
    """``--target xylo`` on a ``max_membrane`` run said "NIR export: unsupported readout MaxMembraneReadout (NIR has
    no max over time; ... method.readout=rate|membrane)": another export's name, and a readout that Xylo refuses."""
    net = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(),
                                                   TimeDistributed(nn.Linear(6, 3))), MaxMembraneReadout(), 1)
    with pytest.raises(ConfigError, match=r"^xylo: the readout MaxMembraneReadout cannot map: the chip's outputs are "
                                          r"spiking neurons, read by their spike counts \(method.readout=rate\)$"):
        xylo_layers(net)


def test_a_ttfs_net_is_refused_for_the_chip_not_pointed_to_another_exporter():
    # before: "to_nir exports rate-coded networks; this is a TTFS network: use to_nir_ttfs" under --target xylo
    with pytest.raises(ConfigError, match=r"^xylo: a TTFS network cannot map: the chip runs rate-coded spiking nets$"):
        xylo_layers(nn.Sequential(TTFSLinear(8, 3)))


def test_a_dense_net_maps_to_linear_neuron_pairs():
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 3)), IF()),
                     {}, (8,))
    assert [(lin.in_features, lin.out_features) for lin, _, _ in xylo_layers(net)] == [(8, 6), (6, 3)]


def test_a_net_ending_in_a_linear_layer_is_refused_not_cut_short():
    """An imported net ``8 -> 6 (IF) -> 4 (IF) -> 3`` (no neurons after its last affine layer) was mapped as the
    8-6-4 net, its 4 hidden IF neurons taken for the outputs and the 3 outputs dropped, without a word."""
    net = NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 4)), IF(),
                                   TimeDistributed(nn.Linear(4, 3))), {}, (8,))
    with pytest.raises(ConfigError, match=r"^xylo: the net ends with a linear layer \(4 -> 3\) and no spiking "
                                          r"neurons after it: Xylo's outputs are spiking neurons$"):
        xylo_layers(net)


@pytest.mark.parametrize("syn_decay, want", [(0.5, (1, 0.5, 1.0)), (0.7, (2, 0.75, 3.0)), (0.9, (3, 0.875, 7.0)),
                                             (1.0, (15, 1 - 2 ** -15, 2 ** 15 - 1)), (0.2, (1, 1.0, 1.0))])
def test_a_synaptic_lif_maps_its_current_decay_to_dash_syn_and_its_threshold_and_bias_factors(syn_decay, want):
    """dash_syn = round(log2(1 / (1 - alpha))) (0.7: log2 3.33 = 1.74 -> 2, where a floor gave 1), a = 1 - 2^-dash,
    threshold x a, bias x a / (1 - a); 0.2 rounds to dash 0 and maps as a LIF (dash_syn 1, factors 1), as a LIF itself
    does."""
    params = NeuronParams(decay=0.9, threshold=0.5)
    got, *rest = neuron_settings(SynapticLIF(params, syn_decay=syn_decay))
    assert got is params and rest[0] == want[0] and rest[1:] == pytest.approx(want[1:], rel=1e-12)
    assert neuron_settings(LIF(decay=0.9))[1:] == (1, 1.0, 1.0)


def test_a_spike_delay_after_a_hidden_layer_maps_as_the_chips_own_and_elsewhere_is_refused():
    """``layers.spike_delay`` after a hidden layer's neurons is Xylo's own one-step delay: the same layers as without
    it (no second delay); before any neurons, twice, or after the output layer it cannot be the chip's."""
    def net(*mods):
        return NirNetwork(nn.Sequential(*mods), {}, (8,))

    lin1, lin2 = TimeDistributed(nn.Linear(8, 6)), TimeDistributed(nn.Linear(6, 3))
    layers = xylo_layers(net(lin1, IF(), SpikeDelay(), lin2, IF()))
    assert [(lin.in_features, lin.out_features, rec) for lin, _, rec in layers] == [(8, 6, None), (6, 3, None)]
    for mods, where in (((SpikeDelay(), lin1, IF(), lin2, IF()), 0), ((lin1, IF(), SpikeDelay(), SpikeDelay(), lin2,
                                                                         IF()), 3)):
        with pytest.raises(ConfigError, match=rf"^xylo: layer {where} \(SpikeDelay\) cannot map: Xylo delays a hidden "
                                              r"layer's spikes by one step, so a spike delay maps only right after a "
                                              r"hidden layer's neurons, once$"):
            xylo_layers(net(*mods))
    with pytest.raises(ConfigError, match=r"^xylo: the output layer's spikes cannot be delayed \(SpikeDelay\): Xylo "
                                          r"delays hidden spikes only$"):
        xylo_layers(net(lin1, IF(), SpikeDelay(), lin2, IF(), SpikeDelay()))


def test_a_biased_synaptic_lif_of_dash_syn_2_maps_its_bias_and_threshold_with_the_chips_factors():
    """syn_decay 0.8 -> dash_syn 2, a = 0.75 (the tests before used 0.5, where the bias factor a / (1 - a) is 1, so
    dropping it went unseen). By hand, hidden th 1.5, bias 0.1, weight 1 (-> 127): float threshold 0.75 * 1.5 =
    1.125 -> round(1.125 * 127) = 143; float bias 3 * 0.1 = 0.3 -> round(0.3 * 143 / 1.125) = round(38.13) = 38
    (without the factor 13); the quantised model's bias 38 / 3 / (143 / 1.125) = 0.0997 and its current decay 0.75."""
    require("rockpool", "--target xylo")
    net = _synaptic_net(1.5, 0.9)
    net.body[0].module.bias = nn.Parameter(torch.tensor([0.1]))
    for neuron in (net.body[1], net.readout.neuron):
        neuron.syn_decay = 0.8
    mapped = xylo_spec(net)
    q = mapped["quantised"]
    assert [np.ravel(q[k]).tolist() for k in ("weights_in", "threshold", "bias", "dash_syn")] == [[127], [143], [38],
                                                                                                  [2]]
    model = quantised_model(net, mapped)
    assert model.body[0].module.bias.item() == pytest.approx(38 / 3 / (143 / 1.125), rel=1e-6)
    assert model.body[1].syn_decay == 0.75


def test_a_delay_trained_net_spikes_on_the_chip_at_the_steps_of_deepspikes_quantised_forward():
    """Mapped as without the delay (weights 127, thresholds 95 and 57, dash 1: XyloSim traced by hand in
    ``test_chip_targets``), input counts [1, 1, 0, ...]: the chip's hidden neuron spikes at step 1 and its output at
    step 2 (one step late); deepspike's quantised forward of the delay-trained net spikes at the same steps, hidden
    and output (without the delay its output spiked at step 1, a step before the chip's)."""
    require("rockpool", "--target xylo")
    net = _synaptic_net(1.5, 0.9)  # 1 -> 1 -> 1 SynapticLIF (syn_decay 0.5, decay 0.5, subtract), weights 1
    net.body.insert(2, SpikeDelay())  # the hidden spikes one step late (model.args.spike_delay: 1)
    mapped = xylo_spec(net)
    q = mapped["quantised"]
    assert np.ravel(q["threshold"]).tolist() == [95] and np.ravel(q["threshold_out"]).tolist() == [57]
    x = torch.tensor([1.0, 1.0, 0, 0, 0, 0])[:, None, None]  # [T, B = 1, 1]
    hidden, out = xylo_simulate(chip_config(q), x)
    assert hidden.ravel().tolist() == [0, 1, 0, 0, 0, 0] and out.ravel().tolist() == [0, 0, 1, 0, 0, 0]
    model = quantised_model(net, mapped)
    with torch.no_grad():
        ours_hidden = model.body[1](model.body[0](x))
        ours_out = model.readout.neuron(model.body[3](model.body[2](ours_hidden)))
    assert torch.equal(ours_hidden, hidden.float()) and torch.equal(ours_out, out.float())


def test_multi_spike_neurons_map_with_the_chips_31_hidden_and_one_output_spike_only():
    """``method.max_spikes`` (``neurons.multi_spike``): a hidden layer trained with 31 spikes a step maps (the chip's
    own rule); 5 on a hidden layer, or more than one on the output layer, would run another net on the chip."""
    params = NeuronParams(decay=0.5, reset="subtract")

    def net(hidden, out):
        return NirNetwork(nn.Sequential(TimeDistributed(nn.Linear(8, 6)), hidden, TimeDistributed(nn.Linear(6, 3)),
                                        out), {}, (8,))

    assert len(xylo_layers(net(MultiSpikeLIF(params, 31), LIF(reset="subtract")))) == 2
    with pytest.raises(ConfigError, match=r"^xylo: layer 0 \(MultiSpikeLIF\) was trained with up to 5 spikes a step "
                                          r"\(method.max_spikes\), but Xylo's hidden layer 0's neurons fire up to 31: "
                                          r"train with max_spikes 31 \(or 1\)$"):
        xylo_layers(net(MultiSpikeLIF(params, 5), LIF(reset="subtract")))
    with pytest.raises(ConfigError, match=r"^xylo: layer 1 \(MultiSpikeSynapticLIF\) was trained with up to 31 "
                                          r"spikes a step \(method.max_spikes\), but Xylo's output neurons fire one: "
                                          r"train with max_spikes 1 on the output layer$"):
        xylo_layers(net(LIF(reset="subtract"), MultiSpikeSynapticLIF(params, 0.5, 31)))


def test_a_multi_spike_hidden_layer_counts_on_the_chip_as_in_deepspikes_quantised_forward():
    """Hidden ``MultiSpikeSynapticLIF`` (th 0.5 -> 32, weights 127, dash 1) with a one-step spike delay, output th
    1.5 (-> 95), input counts [3, 2, 0, ...]. Chip by hand: i = 381 - 190 = 191, v = 191: n = 5, v = 31; i = 191 +
    254 = 445 - 222 = 223, v = 31 - 15 + 223 = 239: n = 7, v = 15; ... counts [5, 7, 3, 2, 0, 0], output [0, 1, 1, 1,
    1, 1]. deepspike's quantised forward gives the same counts and output spikes; the one-spike ``SynapticLIF``
    (one hidden spike a step) fires its output from step 2 on, a step after the chip."""
    require("rockpool", "--target xylo")
    for multi, ours_out in ((True, [0, 1, 1, 1, 1, 1]), (False, [0, 0, 1, 1, 1, 1])):
        net = _synaptic_net(0.5, 1.5)
        if multi:
            net.body[1] = MultiSpikeSynapticLIF(net.body[1].fixed, net.body[1].syn_decay, 31)
        net.body.insert(2, SpikeDelay())
        mapped = xylo_spec(net)
        assert [np.ravel(mapped["quantised"][k]).tolist() for k in ("threshold", "threshold_out")] == [[32], [95]]
        x = torch.tensor([3.0, 2.0, 0, 0, 0, 0])[:, None, None]  # [T, B = 1, 1]
        hidden, out = xylo_simulate(chip_config(mapped["quantised"]), x)
        assert hidden.ravel().tolist() == [5, 7, 3, 2, 0, 0] and out.ravel().tolist() == [0, 1, 1, 1, 1, 1]
        model = quantised_model(net, mapped)
        with torch.no_grad():
            ours_hidden = model.body[1](model.body[0](x))
            got = model.readout.neuron(model.body[3](model.body[2](ours_hidden)))
        assert got.ravel().tolist() == ours_out
        assert torch.equal(ours_hidden, hidden.float()) == multi


@pytest.mark.slow  # about 20 s: a digits run trained to ~0.9
def test_export_xylo_of_a_delay_trained_synaptic_digits_run_scores_the_chip_near_deepspikes_quantised_net(
        tmp_path, capsys):
    """``model.args.spike_delay: 1``: the chip's timing trained in; the export maps it with no second delay. A
    synaptic-LIF digits run (T = 4, Poisson, subtract reset, hidden [32], 15 epochs): measured float 0.894, quantised
    0.889, chip 0.814 (without the delay 0.742 / 0.744 / 0.669); what is left is mostly the chip's up to 31 hidden
    spikes a step where deepspike's neuron fires one (XyloSim held to one spike a step: 0.894, within a point)."""
    require("rockpool", "--target xylo")
    run = tmp_path / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=4", "method.neuron=synaptic", "method.encoder=poisson",
                 "method.decay=0.5", "method.reset=subtract", "method.threshold=1.0", "model.name=mlp",
                 "model.args.hidden=[32]", "model.args.spike_delay=1", "data.name=digits", "train.epochs=15",
                 "train.batch_size=64", "train.seed=0", "train.progress=false", "optim.lr=0.01", "--out",
                 str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--target", "xylo"]) == 0
    report = json.loads(capsys.readouterr().out)["target"]
    assert report["accuracy_quantised"] > 0.8 and abs(report["accuracy_chip"] - report["accuracy_quantised"]) <= 0.1


def test_a_converted_nets_membrane_readout_maps_as_its_output_if_layer():
    """A converted net with ``readout="membrane"`` was refused ("a membrane readout cannot map") though Speck maps it
    by the output IF layer's spikes; Xylo's outputs are spiking neurons, counted, so it maps the same: the last
    layer's neurons are the net's output IF layer."""
    arch = create_architecture("mlp", num_classes=3, input_shape=(8,), hidden=[6])
    net = get_method("converted", {"timesteps": 4, "readout": "membrane"}).build(arch)
    layers = xylo_layers(net)
    assert [lin.out_features for lin, _, _ in layers] == [6, 3] and layers[-1][1] is net.output


def test_a_net_with_no_layer_is_refused_in_one_line():
    """An empty imported net ended in IndexError (list index out of range) under xylo_report."""
    with pytest.raises(ConfigError, match=r"^xylo: the net has no layer to map \(Xylo runs linear -> LIF layers\)$"):
        xylo_layers(NirNetwork(nn.Sequential(), {}, (8,)))


def _bn_net(bias: bool) -> tuple[RateNetwork, nn.Linear, nn.BatchNorm1d]:
    """4 -> 6 (Linear, BatchNorm1d with running statistics, LIF) -> 3 (LIF readout), in eval mode."""
    torch.manual_seed(0)
    lin, bn = nn.Linear(4, 6, bias=bias), nn.BatchNorm1d(6)
    with torch.no_grad():
        bn.running_mean.copy_(torch.linspace(-0.3, 0.4, 6))
        bn.running_var.copy_(torch.linspace(0.5, 2.0, 6))
        bn.weight.copy_(torch.linspace(0.6, 1.5, 6))
        bn.bias.copy_(torch.linspace(-0.2, 0.3, 6))
    body = nn.Sequential(TimeDistributed(lin), TimeDistributed(bn), LIF(decay=0.8, reset="subtract"),
                         TimeDistributed(nn.Linear(6, 3)))
    return RateNetwork(nn.Identity(), body, SpikeRateReadout(LIF(decay=0.8, reset="subtract")), 4).eval(), lin, bn


def test_a_batch_norm_after_a_linear_layer_is_folded_for_xylo_on_a_copy():
    """A ``BatchNorm1d`` after a Linear was refused ("layer 1 (BatchNorm1d) cannot map"), where Speck folds it. Now
    the mapped linear is ``g W`` with bias ``g (b - mu) + beta`` (``g = gamma / sqrt(var + eps)``, computed here by
    hand), the model keeps its batch-norm, and the folded net's spikes equal the unfolded one's in eval mode."""
    net, lin, bn = _bn_net(bias=True)
    (w1, n1, _), (w2, _, _) = xylo_layers(net)
    g = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    assert torch.allclose(w1.weight, lin.weight.detach() * g[:, None], atol=1e-6)
    assert torch.allclose(w1.bias, g * (lin.bias.detach() - bn.running_mean) + bn.bias.detach(), atol=1e-6)
    assert w1 is not lin and (w1.in_features, w2.out_features) == (4, 3) and len(net.body) == 4
    x = (torch.rand(20, 5, 4) < 0.6).float() * 2.0  # [T, B, 4]
    with torch.no_grad():
        want_hidden, want = net.body[2](net.body[1](net.body[0](x))), net.readout.neuron(net.body(x))
        got_hidden = n1(w1(x))
        got = net.readout.neuron(net.body[3].module(got_hidden))
    assert want_hidden.sum() > 0 and want.sum() > 0
    assert torch.equal(got_hidden, want_hidden) and torch.equal(got, want)
    net.body[1] = TemporalEffectiveBatchNorm((6,), 4)  # a scale per step: no folded weight holds it
    with pytest.raises(ConfigError, match=r"^xylo: TEBN \(method.norm=tebn\) scales each time step by its own p_t"):
        xylo_layers(net)


@pytest.mark.parametrize("nonzero", [32000, 32001])
def test_the_hidden_to_hidden_weight_memory_holds_32000_weights_and_no_more(nonzero):
    """Xylo Audio 2 holds 32000 words per synapse: ``weights_rec [179, 179, 1]`` with its first ``nonzero`` entries 1
    (32041 in all) fits that memory at 32000 and exceeds it at 32001 (a fan-out of 179 > 64 either way)."""
    w = np.zeros(179 * 179, dtype=int)
    w[:nonzero] = 1
    over = _fanout_over({"weights_rec": w.reshape(179, 179, 1)})
    assert over[0].startswith("179 hidden neurons with a fan-out")
    assert over[1:] == ([] if nonzero == 32000 else ["32001 hidden-to-hidden weights > 32000"])


def test_an_unfed_neurons_threshold_and_bias_are_scaled_into_int16_without_clipping():
    """Two hidden neurons with no input weights, (th, b) = (0.01, 1) and (0.3, -1); scale s = 32767 / max(|th|, |b|)
    = 32767 for both. By hand: 0.01 s = 327.67 -> 327 (toward 0: rounded up to 328 the bias was 1 * 328 / 0.01 =
    32800, clipped to 32767 with a warning), bias 327 / 0.01 = 32700; 0.3 s = 9830.1 -> 9830, bias -9830 / 0.3 =
    -32766.67 -> -32767 (scaled by |th| alone, s = 109223: threshold 32767 and a bias clipped from -109223)."""
    spec = {"weights_in": np.zeros((2, 2, 1)), "weights_rec": np.zeros((2, 2, 1)), "weights_out": np.ones((2, 1)),
            "threshold": np.array([0.01, 0.3]), "bias": np.array([1.0, -1.0]), "threshold_out": np.array([1.0]),
            "bias_out": np.array([0.0])}
    q = {**spec, "threshold": np.array([0, 0]), "threshold_out": np.array([127])}
    _scale_unfed_neurons(spec, q)
    assert _scale_biases(spec, q) == []
    assert q["threshold"].tolist() == [327, 9830] and q["bias"].tolist() == [32700, -32767]
    assert q["threshold_out"].tolist() == [127] and q["bias_out"].tolist() == [0]  # a fed neuron: kept


def test_a_bias_is_clipped_with_a_warning_from_32768_and_not_at_minus_32768():
    """int16 holds -32768 to 32767: a hidden bias of 32768 in the chip's units is clipped and said, an output bias of
    -32768 is kept without a word (thresholds 1 in both spec and int spec: scale 1)."""
    spec = {"threshold": np.array([1.0]), "bias": np.array([32768.0]), "threshold_out": np.array([1.0]),
            "bias_out": np.array([-32768.0])}
    q = {"threshold": np.array([1]), "threshold_out": np.array([1])}
    assert _scale_biases(spec, q) == ["1 hidden neuron biases exceed int16 in the chip's units (up to 32768): clipped "
                                      "to [-32768, 32767]"]
    assert q["bias"].tolist() == [32767] and q["bias_out"].tolist() == [-32768]


def test_the_reports_three_resimulations_run_the_nets_each_is_said_to_run():
    """``accuracy_float`` runs the net (decay 0.8), ``accuracy_quantised`` the chip's decay 1 - 2^-dash_mem (tau = dt /
    0.2 = 5 dt: dash round(log2 5) = 2, decay 0.75), ``accuracy_int_weights_only`` the int weights with deepspike's
    own decay (0.8), ``accuracy_chip`` XyloChip (no body): here each "accuracy" is the hidden layer's decay."""
    require("rockpool", "--target xylo")
    torch.manual_seed(0)
    body = nn.Sequential(TimeDistributed(nn.Linear(4, 6)), LIF(decay=0.8), TimeDistributed(nn.Linear(6, 3)))
    net = RateNetwork(nn.Identity(), body, SpikeRateReadout(LIF(decay=0.8)), 4).eval()
    report = xylo_report(net, lambda m: float(m.body[1].params.decay) if hasattr(m, "body") else -1.0)
    assert [report[k] for k in ("accuracy_float", "accuracy_quantised", "accuracy_int_weights_only",
                                "accuracy_chip")] == pytest.approx([0.8, 0.75, 0.8, -1.0])
    assert report["accuracy_cost"] == pytest.approx(0.05) and report["accuracy_chip_cost"] == pytest.approx(1.8)


def test_a_refusal_after_a_folded_batch_norm_names_the_users_layer():
    """Refusals numbered the folded copy's layers: with the BN (body[1]) folded away, a MaxPool1d at body[3] was
    "layer 2", and a second SpikeDelay at body[4] "layer 3"."""
    net, _, _ = _bn_net(bias=True)
    net.body.insert(3, nn.MaxPool1d(2))  # body: Linear, BN, LIF, MaxPool1d (index 3), Linear
    with pytest.raises(ConfigError, match=r"^xylo: layer 3 \(MaxPool1d\) cannot map"):
        xylo_layers(net)
    net.body[3] = SpikeDelay()
    net.body.insert(4, SpikeDelay())  # Linear, BN, LIF, SpikeDelay, SpikeDelay (index 4: a second delay), Linear
    with pytest.raises(ConfigError, match=r"^xylo: layer 4 \(SpikeDelay\) cannot map"):
        xylo_layers(net)


def test_a_linear_bn_lif_net_maps_onto_xylo_as_its_hand_folded_twin():
    """The Xylo mapping of the Linear-BN-LIF net (no linear bias) is that of the same net with the batch-norm folded
    by hand: the same int config, report and quantised forward (``quantised_model`` writes into its own folded copy)."""
    require("rockpool", "--target xylo")
    from deepspike.deploy.xylo import xylo_report

    net, lin, bn = _bn_net(bias=False)
    twin = copy.deepcopy(net)
    g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    folded = nn.Linear(4, 6)
    with torch.no_grad():
        folded.weight.copy_(lin.weight * g[:, None])
        folded.bias.copy_(bn.bias - g * bn.running_mean)
    twin.body = nn.Sequential(TimeDistributed(folded), *list(twin.body)[2:])
    report, want = xylo_report(net), xylo_report(twin)
    assert report["fits"] and report == want
    q, q_twin = xylo_spec(net)["quantised"], xylo_spec(twin)["quantised"]
    assert all(np.array_equal(np.asarray(q[k]), np.asarray(q_twin[k])) for k in q_twin)
    x = (torch.rand(12, 3, 4) < 0.6).float()
    with torch.no_grad():
        got, ref = quantised_model(net, xylo_spec(net)), quantised_model(twin, xylo_spec(twin))
        assert torch.equal(got.readout.neuron(got.body(x)), ref.readout.neuron(ref.body(x)))
    assert all(torch.equal(a, b) for a, b in zip(got.body.state_dict().values(), ref.body.state_dict().values()))
    assert len(got.body) == 3 and not torch.equal(ref.body[0].module.weight, folded.weight)  # the chip's, not float
    assert len(net.body) == 4 and isinstance(net.body[1].module, nn.BatchNorm1d)
