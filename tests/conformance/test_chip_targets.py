"""``--target speck`` (Sinabs' DYNAP-CNN mapping) and ``--target xylo`` (Rockpool's Xylo mapper), offline."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from conformance.conftest import require
from deepspike.cli import main
from deepspike.core.errors import ConfigError
from deepspike.deploy.families import build, input_shape
from deepspike.deploy.speck import speck_layers, speck_report
from deepspike.deploy.xylo import (
    dense_layers,
    quantised_model,
    rockpool_xylo_mapper,
    xylo_layers,
    xylo_report,
    xylo_spec,
)
from deepspike.deploy.xylosim import chip_config, neuron_step, xylo_simulate
from deepspike.layers.readout import SpikeRateReadout
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import create_model, get_method
from deepspike.methods.rate_network import RateNetwork
from deepspike.models import create_architecture
from deepspike.neurons.modules import IF, LIF
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.state_quant import StateQuant
from deepspike.neurons.synaptic import SynapticLIF


def _dense(sizes, neuron=lambda: LIF(decay=0.9), seed=0) -> RateNetwork:
    torch.manual_seed(seed)
    body = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        body.append(TimeDistributed(nn.Linear(a, b)))
        if i < len(sizes) - 2:
            body.append(neuron())
    return RateNetwork(nn.Identity(), nn.Sequential(*body), SpikeRateReadout(neuron()), 1).eval()


def _kernel_memory(c, k, f):
    """Speck kernel memory by hand: ``c * 2^(ceil log2(k*k) + ceil log2 f)``."""
    return c * 2 ** (math.ceil(math.log2(k * k)) + math.ceil(math.log2(f)))


def test_speck_maps_the_pool_net_with_hand_computed_memory():
    require("sinabs", "--target speck")
    report = speck_report(build("pool", "IF"), input_shape("pool"))
    assert report["fits"] and [r["core"] for r in report["layers"]] == [0, 1]
    first, second = report["layers"]
    assert first["kernel_memory"] == _kernel_memory(1, 3, 4) == 64
    assert first["neuron_memory"] == 4 * 8 * 8 and first["pool"] == 2
    # the linear layer on the pooled 4x4x4 map is a 4x4 conv: 4 * 2^(4 + 4) words
    assert second["in_shape"] == [4, 4, 4] and second["kernel_memory"] == _kernel_memory(4, 4, 10) == 1024


def _fit_scale(x: torch.Tensor, bits: int) -> float:
    lo, hi = float(x.min()), float(x.max())
    top = 2 ** (bits - 1) - 1
    return top / hi if abs(lo) <= hi * (top + 1) / top else (top + 1) / abs(lo)


def _speck_scale(conv: nn.Module, threshold: float) -> float:
    """Speck's common scale by hand: the largest that fits the weights and bias in int8 (-128..127) and the threshold
    in int16 (32767)."""
    parts = [_fit_scale(conv.weight.detach(), 8), 32767 / threshold]
    return min(parts + ([_fit_scale(conv.bias.detach(), 8)] if conv.bias is not None else []))


def test_speck_discretises_weights_and_threshold_by_one_scale_that_fits_their_bits():
    """Sinabs' floor ``min_v_mem=None`` entered the scale as -2^15 float units and capped it at 1: the pool net's
    threshold 1 stayed 1 and its weights (|w| < 0.5) rounded to 0; now the scale is the weights' or bias's (int8)."""
    require("sinabs", "--target speck")
    net = build("pool", "IF")
    report = speck_report(net, input_shape("pool"))
    for row, spec in zip(report["layers"], speck_layers(net, input_shape("pool"))):
        scale = _speck_scale(spec["conv"], spec["threshold"])
        w = torch.round(spec["conv"].weight.detach() * scale)
        assert row["threshold_int"] == round(spec["threshold"] * scale) > 1
        assert row["weights_int8_range"] == [int(w.min()), int(w.max())] and 127 in (w.max(), -w.min() - 1)


def test_speck_layers_go_to_the_cores_whose_memories_hold_them():
    """Speck's memories per core (kernel 16,16,16,32,32,64,64,16,16 Ki; neurons 64,64,64,32,32,16,16,16,16 Ki), by
    hand: conv 1 -> 16 (1 x 1) on 64 x 64 needs kernel 1 * 2^(0 + 4) = 16 and neurons 16 * 2^(6 + 6) = 64Ki words:
    cores 0, 1, 2; after a 4 x 4 pool, the linear 16 x 16 x 16 -> 16 (a 16 x 16 kernel) kernel 16 * 2^(8 + 4) = 64Ki
    and neurons 16: cores 5, 6."""
    require("sinabs", "--target speck")
    body = nn.Sequential(TimeDistributed(nn.Conv2d(1, 16, 1)), IF(), TimeDistributed(nn.AvgPool2d(4)),
                         TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(4096, 16)))
    net = RateNetwork(nn.Identity(), body, SpikeRateReadout(IF()), 1).eval()
    rows = speck_report(net, (1, 64, 64))["layers"]
    assert [(r["kernel_memory"], r["neuron_memory"]) for r in rows] == [(16, 65536), (65536, 16)]
    assert [r["cores_possible"] for r in rows] == [[0, 1, 2], [5, 6]]
    wide = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(nn.Linear(16, 1024))), SpikeRateReadout(IF()), 1)
    row = speck_report(wide.eval(), (16,))["layers"][0]  # 1024 biases (f): every core's 1Ki bias memory holds them
    assert (row["bias_memory"], row["kernel_memory"], row["cores_possible"]) == (1024, 16384, list(range(9)))


def test_speck_fits_a_net_of_nine_layers_on_its_nine_cores_and_not_ten():
    """Speck has 9 cores, one layer each: a chain of 9 small linear -> IF layers maps (cores 0-8, each once), 10 do
    not ("10 layers > 9 cores")."""
    require("sinabs", "--target speck")

    def chain(n):
        body = [m for _ in range(n - 1) for m in (TimeDistributed(nn.Linear(4, 4)), IF())]
        return RateNetwork(nn.Identity(), nn.Sequential(*body, TimeDistributed(nn.Linear(4, 4))),
                           SpikeRateReadout(IF()), 1).eval()

    torch.manual_seed(0)
    nine, ten = speck_report(chain(9), (4,)), speck_report(chain(10), (4,))
    assert nine["fits"] and sorted(r["core"] for r in nine["layers"]) == list(range(9))
    assert not ten["fits"] and ten["reason"] == "10 layers > 9 cores"


def test_speck_does_not_fit_a_net_whose_weights_all_round_to_0():
    """Layer 1's weights x 1e-6 (threshold 1): the common scale is its bias's (int8) and they round to 0, so the
    chip's last layer ignores its input; the report said fits: true."""
    require("sinabs", "--target speck")
    net = build("pool", "IF")
    with torch.no_grad():
        speck_layers(net, input_shape("pool"))  # maps
        [m for m in net.modules() if isinstance(m, nn.Linear)][-1].weight.mul_(1e-6)
    report = speck_report(net, input_shape("pool"))
    assert report["layers"][1]["weights_int8_range"] == [0, 0] and report["layers"][1]["threshold_int"] > 0
    assert not report["fits"] and report["reason"] == ("the weights of layer 1 all round to 0 on the chip (int8 "
                                                       "weights sharing a scale with the int16 threshold)")
    assert speck_report(build("pool", "IF"), input_shape("pool"))["fits"]


def test_speck_does_not_fit_a_net_whose_thresholds_round_to_0():
    """Threshold 0.001 against weights of ~0.3: the common scale is the weights' (127 / max |w|, about 400), so the
    int16 threshold is round(0.4) = 0 and every neuron fires from rest; the report said fits: true."""
    require("sinabs", "--target speck")
    report = speck_report(_dense([8, 6, 3], lambda: IF(threshold=0.001)), (8,))
    assert [r["threshold_int"] for r in report["layers"]] == [0, 0]
    assert not report["fits"] and report["reason"] == ("the threshold of layer 0, 1 rounds to 0 on the chip (below "
                                                       "half an int8 weight step): its neurons fire whatever their "
                                                       "input")
    assert speck_report(_dense([8, 6, 3], IF), (8,))["fits"]


def test_speck_notes_that_the_chip_adds_a_bias_on_its_slow_clock():
    """Sinabs' config builder sets ``leak_enable`` for a layer whose discretised bias is not all 0, and the chip then
    adds the bias on each slow-clock tick, not each time step: the report did not say so. Layer 0's bias zeroed,
    layer 1's kept: only layer 1 is named; no bias at all: no note."""
    require("sinabs", "--target speck")
    net = _dense([8, 4, 2], IF)
    first, second = (lin for lin, _ in dense_layers(net))
    with torch.no_grad():
        first.bias.zero_()
    assert speck_report(net, (8,))["note"] == (
        "layer 1 has a bias: Sinabs switches on their leak (leak_enable), so the chip adds the bias on each tick of "
        "its slow clock (its rate set apart: slow_clk_frequency), not once per time step as deepspike does")
    with torch.no_grad():
        second.bias.zero_()
    assert "note" not in speck_report(net, (8,))
    assert "layers 0, 1 have a bias" in speck_report(build("pool", "IF"), input_shape("pool"))["note"]


def test_speck_maps_a_batch_norm_net_as_the_net_with_the_bn_folded_by_hand():
    """A linear -> BN -> IF net was refused ("layer 1 (BatchNorm1d) has no Speck equivalent"); it now reports what the
    net with ``W' = g W``, ``b' = g (b - mu) + beta`` (``g = gamma / sqrt(var + eps)``, written out here) reports,
    the folded bias noted, and the user's net keeps its BN."""
    require("sinabs", "--target speck")
    torch.manual_seed(0)
    lin, bn, out = nn.Linear(8, 6), nn.BatchNorm1d(6), nn.Linear(6, 3)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3), bn.running_var.uniform_(0.2, 2.0), bn.weight.uniform_(0.5, 2.0)
    net = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(lin), TimeDistributed(bn), IF(),
                                                   TimeDistributed(out)), SpikeRateReadout(IF()), 1).eval()
    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    by_hand = nn.Linear(8, 6)
    with torch.no_grad():
        by_hand.weight.copy_(lin.weight * g[:, None]), by_hand.bias.copy_(g * (lin.bias - bn.running_mean) + bn.bias)
    folded = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(by_hand), IF(), TimeDistributed(out)),
                         SpikeRateReadout(IF()), 1).eval()
    report = speck_report(net, (8,))
    assert report == speck_report(folded, (8,)) and report["fits"] and len(report["layers"]) == 2
    assert report["note"].startswith("layers 0, 1 have a bias") and len(net.body) == 4


def test_speck_reports_a_layer_too_big_for_any_core():
    require("sinabs", "--target speck")
    report = speck_report(_dense([64, 2048, 10], IF), (64,))
    assert not report["fits"]
    assert report["layers"][0]["kernel_memory"] == 64 * 2048 and report["layers"][0]["cores_possible"] == []
    assert report["reason"].startswith("layer 0 needs kernel 131072")


@pytest.mark.parametrize("net, message", [
    (lambda: build("conv", "LIF"), "speck: layer 1 (LIF) is leaky (decay 0.9)"),
    (lambda: _dense([8, 4, 2], IF), None),
])
def test_speck_refuses_leaky_nets_in_one_line(net, message):
    require("sinabs", "--target speck")
    if message is None:
        assert speck_report(net(), (8,))["fits"]
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        speck_report(net(), (1, 8, 8))
    assert "\n" not in str(e.value)


def test_xylo_mapper_keeps_our_weights_and_quantises_within_one_step():
    require("rockpool", "--target xylo")
    model = _dense([16, 24, 12, 8])
    mapped = xylo_spec(model)
    w1, w2, w3 = (lin.weight.detach().numpy() for lin, _ in mapped["pairs"])
    fl = mapped["float"]
    assert np.allclose(fl["weights_in"][:, :24], w1.T) and np.allclose(fl["weights_rec"][:24, 24:36], w2.T)
    assert np.allclose(fl["weights_out"][24:36], w3.T)
    q = quantised_model(model, mapped)
    scales = np.asarray(mapped["quantised"]["threshold"], float) / np.asarray(fl["threshold"], float)
    scales = [scales[:24], scales[24:36], np.asarray(mapped["quantised"]["threshold_out"], float)
              / np.asarray(fl["threshold_out"], float)]
    for (lin, neuron), (orig, _), s in zip(dense_layers(q), mapped["pairs"], scales):
        w0 = orig.weight.detach()
        err = (lin.weight.detach() - w0).abs()
        # weight rounding (half an int step, 1/s) plus the threshold's own rounding (relative 0.5 / th_q, th = 1)
        bound = torch.as_tensor(0.5 / s, dtype=err.dtype)[:, None] + w0.abs() * torch.as_tensor(
            0.5 / s, dtype=err.dtype)[:, None] + 1e-6
        assert (err <= bound).all() and err.max() > 0
        assert neuron.params.decay == 1 - 2 ** -3 and neuron.params.reset == "subtract"  # 0.9 -> dash 3
    assert xylo_report(model)["fits"]


@pytest.mark.parametrize("neuron", [IF, lambda: LIF(decay=0.99999)], ids=["IF", "decay-0.99999"])
def test_xylo_maps_a_slow_or_absent_membrane_leak_to_the_largest_4_bit_dash(neuron):
    """Xylo's dash registers hold 4 bits (XyloSim's XyloIAFNeuron: "should be 4 bits"): IF gave dash_mem
    log2(2^16) = 16, decay 0.99999 gave round(log2(1e5)) = 17; both are now 15 (on int16 state ``v >> 15`` is 0 or
    -1: the same decay of 1 a step as XyloSim ran 16 with)."""
    require("rockpool", "--target xylo")
    q = xylo_spec(_dense([16, 24, 8], neuron=neuron))["quantised"]
    assert np.ravel(q["dash_mem"]).tolist() == [15] * 24 and np.ravel(q["dash_mem_out"]).tolist() == [15] * 8


def test_a_trained_membrane_quantisation_gives_way_to_the_chips_own():
    require("rockpool", "--target xylo")
    quantised = StateQuant(4)
    model = _dense([16, 24, 8], neuron=lambda: LIF(decay=0.9, state_quant=quantised))
    mapped = xylo_spec(model)
    assert all(n.params.state_quant is None for _, n in dense_layers(quantised_model(model, mapped)))
    assert all(n.params.state_quant == quantised for _, n in dense_layers(quantised_model(model, mapped, False)))
    assert "keeps its own integer membrane" in xylo_report(model)["note"]
    assert "note" not in xylo_report(_dense([16, 24, 8], neuron=lambda: LIF(decay=0.9, reset="subtract")))


def test_xylo_notes_that_the_chip_resets_by_subtraction_where_the_net_resets_to_zero():
    """The chip subtracts the threshold at a spike (XyloSim's ``v <- v - n th``: membrane 4, decayed by 1 to 3,
    threshold 2: 1 kept), where deepspike's reset "zero" (LIF's default) clears the membrane: the report said nothing
    of it (a test asserted no note for such a net, written for the membrane-quantisation note). Layer 1 zero, layer 2
    subtract: layer 1 named; both zero: both; both subtract: no note (the test above)."""
    require("rockpool", "--target xylo")
    one = torch.ones(1, 1, dtype=torch.int64)
    assert neuron_step(0 * one, 4 * one, 2 * one, 0 * one, 15 * one, 1 * one, 31)[1:] == (1 * one, 1 * one)
    net = _dense([16, 24, 8], neuron=lambda: LIF(decay=0.9, reset="subtract"))
    net.body[1].params = dataclasses.replace(net.body[1].params, reset="zero")
    assert xylo_report(net)["note"] == ("layer 1 reset to zero (reset 'zero') in deepspike; the chip resets by "
                                        "subtracting the threshold, keeping the membrane above it (accuracy_chip "
                                        "includes the difference)")
    assert xylo_report(_dense([16, 24, 8]))["note"].startswith("layers 1, 2 reset to zero (reset 'zero') in ")


def test_xylo_reports_a_converted_membrane_readout_net_as_the_same_net_read_by_spike_counts():
    """A converted net with ``readout="membrane"`` was refused ("xylo: a membrane readout cannot map"); it now maps as
    the same net with ``readout="spike"`` (the chip's output neurons spike and are counted): the same report and
    re-simulated accuracies (by spike counts), a note saying the readout became spike counts, the trained net's own
    accuracy by its membrane, and the user's net left reading its membrane."""
    require("rockpool", "--target xylo")
    torch.manual_seed(0)
    arch = create_architecture("mlp", num_classes=3, input_shape=(8,), hidden=[6])
    net = get_method("converted", {"timesteps": 8, "readout": "membrane"}).build(arch).eval()
    spiking = copy.deepcopy(net)
    spiking.readout = "spike"
    x, y = torch.rand(20, 8), torch.randint(0, 3, (20,))

    def accuracy(model):
        torch.manual_seed(1)
        with torch.no_grad():
            return float((model(x).argmax(1) == y).double().mean())

    got, want = xylo_report(net, accuracy), xylo_report(spiking, accuracy)
    replaced = "membrane readout replaced by the output IF layer's spikes (decode by count)"
    assert got.pop("note") == f"{replaced}; {want.pop('note')}"
    for key in ("accuracy_float", "accuracy_cost"):
        got.pop(key), want.pop(key)
    assert got == want and net.readout == "membrane"


def test_xylo_reports_what_exceeds_the_chip_and_refuses_conv_nets():
    require("rockpool", "--target xylo")
    report = xylo_report(_dense([64, 32, 10]))
    assert not report["fits"] and report["reason"] == "64 input channels > 16; 10 output neurons > 8"
    with pytest.raises(ConfigError, match=r"xylo: layer 0 \(Conv2d\) cannot map"):
        xylo_report(build("conv", "LIF"))


def test_xylo_keeps_rockpools_drc_warnings_off_stderr_and_reports_the_new_ones(monkeypatch):
    """Rockpool's mapper warned (DRCWarning, on stderr at every ``--target xylo``) of >16 input and >8 output
    channels, which the report's reason says already; a warning it does not say goes to ``tool_warnings``."""
    require("rockpool", "--target xylo")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = xylo_report(_dense([64, 32, 10]))
    assert [str(w.message) for w in caught] == [] and "tool_warnings" not in report
    xm = rockpool_xylo_mapper()
    mapper = xm.mapper

    def warning_mapper(*args, **kwargs):
        new = "Bias parameters of LinearWeights modules are *not*\ntransferred to Xylo."
        warnings.warn(xm.DRCWarning(new), stacklevel=2)
        warnings.warn(xm.DRCWarning("Xylo only supports up to 16 input channels."), stacklevel=2)
        return mapper(*args, **kwargs)

    monkeypatch.setattr(xm, "mapper", warning_mapper)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = xylo_report(_dense([64, 32, 10]))
    assert [str(w.message) for w in caught] == []
    assert report["reason"] == "64 input channels > 16; 10 output neurons > 8"
    assert report["tool_warnings"] == ["Bias parameters of LinearWeights modules are *not* transferred to Xylo."]


def test_xylo_does_not_fit_a_hidden_layer_whose_fan_out_exceeds_64():
    """Xylo Audio 2 holds at most 64 nonzero weights from a hidden neuron to hidden neurons (Rockpool's Xylo
    overview: max. fan-out 64; 32000 in all): a dense 20 -> 100 hidden layer gives its 20 source neurons a fan-out of
    about 100, and the report said fits: true. Counted by hand from the float weights (channel_quantize keeps a
    weight nonzero unless it rounds to 0); a 20 -> 64 layer fits."""
    require("rockpool", "--target xylo")
    net = _dense([16, 20, 100, 8])
    q = xylo_spec(net)["quantised"]
    w = dense_layers(net)[1][0].weight.detach().numpy()  # [100 targets, 20 sources]
    scale = 127 / np.abs(w).max(1)  # a target neuron's weights scaled so its largest is 127 (threshold well in int16)
    fanout = np.count_nonzero(np.round(w * scale[:, None]), axis=0)
    assert np.array_equal(np.count_nonzero(q["weights_rec"][:20], axis=(1, 2)), fanout) and fanout.min() > 64
    report = xylo_report(net)
    assert not report["fits"] and report["reason"] == (
        f"20 hidden neurons with a fan-out (nonzero weights to hidden neurons) > 64 (up to {fanout.max()})")
    assert xylo_report(_dense([16, 20, 64, 8]))["fits"] and report["limits"]["fanout"] == 64


@pytest.mark.parametrize("scaled, layers", [((0, 1), "layers 1, 2"), ((1,), "layer 2")])
def test_xylo_does_not_fit_a_net_whose_weights_all_round_to_0(scaled, layers):
    """Weights x 1e-30 (threshold 1): channel_quantize scales them so the threshold fits int16 and they round to 0,
    so the chip's net ignores its input; the report said fits: true (weights_int8_range [0, 0] the only hint)."""
    require("rockpool", "--target xylo")
    model = _dense([16, 24, 8])
    with torch.no_grad():
        for lin, _ in (dense_layers(model)[k] for k in scaled):
            lin.weight.mul_(1e-30)
    report = xylo_report(model)
    assert not report["fits"] and report["reason"] == (
        f"the weights of {layers} all round to 0 on the chip (int8 weights scaled with an int16 threshold): the "
        "chip's net ignores its input")


def test_export_target_commands_on_a_trained_run(tiny_run, capsys):
    require("rockpool", "--target xylo")
    require("sinabs", "--target speck")
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--target", "xylo", "--limit", "64"]) == 0
    report = json.loads(capsys.readouterr().out)["target"]
    assert report["resources"] == {"inputs": 64, "hidden": 8, "outputs": 10} and not report["fits"]
    assert 0 <= report["accuracy_quantised"] <= 1 and report["accuracy_cost"] == pytest.approx(
        report["accuracy_float"] - report["accuracy_quantised"])
    # a direct-encoded run: the chip's inputs are event counts, and XyloSim would floor the analog pixels to 0
    # (Fashion-MNIST's 784-100-10 MLP scored 0.105, every sample class 0): no chip accuracy, and the note says why
    assert report["accuracy_chip"] is None and report["accuracy_chip_cost"] is None
    assert "input encoder (direct) gives analog values" in report["note"]
    assert main(["export", str(tiny_run), "--target", "speck"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: speck: ") and "leaky" in err and err.count("\n") == 1


def _rsnn(hidden, seed=0):
    """An ``rsnn`` (recurrent hidden layers, 12 inputs, 3 spiking outputs, decay 0.8 -> Xylo's dash 2, exactly 0.75)
    with weights large enough that every layer fires."""
    torch.manual_seed(seed)
    net = create_model("rsnn", method="stbp", num_classes=3, input_shape=(12,), model_args={"hidden": hidden},
                       timesteps=8, encoder="frames", readout="rate", decay=0.8, threshold=0.5).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.4)
    return net


def _integer_loop(q: dict, x: np.ndarray, sizes: list[int]) -> tuple[list[np.ndarray], float]:
    """The quantised net in Xylo's integer units under deepspike's dynamics (what ``quantised_model`` runs; not
    XyloSim's rules, which ``xylosim`` follows), by hand from the int matrices ``[source, target]``: per layer
    ``v = (1 - 2^-dash) v + s_in,t @ W_q + s_t-1 @ V_q + b_q``, spike and subtract ``th_q`` at ``v >= th_q``, the
    layers one after the other (a spike reaches the next layer in its own step, as in deepspike). ``x [T, B, F]``;
    the spikes ``[T, B, n]`` of each layer and the smallest ``|v - th_q|`` seen (no tie to split)."""
    w_in, w_rec, w_out = (np.asarray(q[k], float).reshape(np.shape(q[k])[:2]) for k in
                          ("weights_in", "weights_rec", "weights_out"))
    spikes, out, margin = x, [], np.inf
    for k, n in enumerate(sizes):
        start, sfx = sum(sizes[:k]), "_out" if k == len(sizes) - 1 else ""
        own = slice(None) if sfx else slice(start, start + n)
        prev = slice(start - sizes[k - 1], start) if k else None
        w = w_in[:, own] if k == 0 else (w_out[prev] if sfx else w_rec[prev, own])
        v_rec = np.zeros((n, n)) if sfx else w_rec[own, own]
        th, b = np.asarray(q["threshold" + sfx], float)[own], np.asarray(q["bias" + sfx], float)[own]
        decay = 1.0 - 2.0 ** -np.asarray(q["dash_mem" + sfx], float)[own]
        v, s, layer = np.zeros((x.shape[1], n)), np.zeros((x.shape[1], n)), []
        for t in range(x.shape[0]):
            v = decay * v + spikes[t] @ w + s @ v_rec + b
            margin = min(margin, float(np.abs(v - th).min()))
            s = (v >= th).astype(float)
            v = v - th * s
            layer.append(s)
        spikes = np.stack(layer)
        out.append(spikes)
    return out, margin


def test_xylo_maps_recurrent_hidden_layers_into_the_diagonal_blocks_of_weights_rec():
    """Hidden neurons 0-4 (recurrent V1), 5-8 (recurrent V2): ``weights_rec [source, target]`` holds V1^T and V2^T
    on its diagonal and the feed-forward W2^T in block (0-4, 5-8); nothing else."""
    require("rockpool", "--target xylo")
    net = _rsnn([5, 4])
    (w1, _, v1), (w2, _, v2), (w3, _, v3) = ((lin.weight.detach().numpy(), n, r) for lin, n, r in xylo_layers(net))
    assert v3 is None and [lin.out_features for lin, _ in dense_layers(net)] == [5, 4, 3]
    mapped = xylo_spec(net)
    assert mapped["resources"] == {"inputs": 12, "hidden": 9, "outputs": 3} and mapped["over"] == []
    fl = mapped["float"]
    want = np.zeros((9, 9))
    want[:5, :5], want[5:, 5:] = v1.weight.detach().numpy().T, v2.weight.detach().numpy().T
    want[:5, 5:] = w2.T
    assert fl["weights_rec"].shape == (9, 9) and np.allclose(fl["weights_rec"], want, rtol=0, atol=1e-7)
    assert np.allclose(fl["weights_in"][:, :5], w1.T) and np.allclose(fl["weights_out"][5:], w3.T)
    assert not fl["weights_in"][:, 5:].any() and not fl["weights_out"][:5].any()
    report = xylo_report(net)
    assert report["fits"] and report["resources"] == mapped["resources"]
    assert report["weights_int8_range"] == [-127, 127]


def test_xylo_maps_the_synaptic_current_to_dash_syn_1_so_input_reaches_the_membrane():
    """``tau_syn = 1.01 dt`` gave dash_syn 0: Xylo decays the current (``i -= i >> 0``: to 0) before the membrane
    adds it, so no input ever reached a membrane; dash_syn 1 is the smallest that passes it (``xylosim``)."""
    require("rockpool", "--target xylo")
    q = xylo_spec(_rsnn([5, 4]))["quantised"]
    assert np.ravel(q["dash_syn"]).tolist() == [1] * 9 and np.ravel(q["dash_syn_out"]).tolist() == [1] * 3


def test_xylo_quantised_recurrent_layer_holds_the_int_feedback_over_its_scales():
    """``dynamics=False``: V = V_q^T / s (the target neuron's scale, shared with its input weights) exactly, off the
    float V by at most the weight's rounding (half an int step, 0.5 / s) plus the threshold's (relative 0.5 / th_q,
    th = 0.5); decay and reset unchanged."""
    require("rockpool", "--target xylo")
    net = _rsnn([5, 4])
    mapped = xylo_spec(net)
    q, fl = mapped["quantised"], mapped["float"]
    s = np.asarray(q["threshold"], float) / np.asarray(fl["threshold"], float)
    model = quantised_model(net, mapped, dynamics=False)
    for (_, neuron, rec), (_, _, orig), own in zip(xylo_layers(model), xylo_layers(net), (slice(0, 5), slice(5, 9))):
        v_q = np.asarray(q["weights_rec"]).reshape(9, 9)[own, own]
        assert np.abs(v_q).max() <= 127 and np.array_equal(v_q, np.round(v_q))
        assert torch.equal(rec.weight, torch.as_tensor(v_q.T / s[own, None], dtype=torch.float32))
        err, w0 = (rec.weight - orig.weight).abs().detach(), orig.weight.detach()
        bound = torch.as_tensor(0.5 / s[own], dtype=err.dtype)[:, None] * (1 + w0.abs() / 0.5) + 1e-6
        assert (err <= bound).all() and err.max() > 0
        assert neuron.params.decay == 0.8 and neuron.params.reset == "zero"


def test_xylo_quantised_recurrent_net_spikes_like_the_integer_net_by_hand():
    """With Xylo's dynamics (dash 2: decay 0.75, reset by subtraction) the quantised net's spikes, hidden and
    output, are those of the integer loop; the accuracy path runs on it."""
    require("rockpool", "--target xylo")
    net = _rsnn([6], seed=1)
    mapped = xylo_spec(net)
    model = quantised_model(net, mapped)
    torch.manual_seed(1)
    x = (torch.rand(4, 8, 12) < 0.4).float()  # [B, T, F]
    (hidden, out), margin = _integer_loop(mapped["quantised"], x.transpose(0, 1).double().numpy(), [6, 3])
    assert margin > 1e-2  # no membrane lands on its threshold: float rounding cannot split a tie
    with torch.no_grad():
        got_hidden, scores = model.body[0](x.transpose(0, 1)), model(x)
    assert model.body[0].neuron.params.decay == 0.75 and model.body[0].neuron.params.reset == "subtract"
    assert np.array_equal(got_hidden.numpy(), hidden) and 0 < hidden.sum() < hidden.size
    assert np.allclose(scores.numpy(), out.mean(0)) and out.sum() > 0
    y = torch.tensor([0, 1, 2, 0])
    report = xylo_report(net, lambda m: (m(x).argmax(1) == y).float().mean().item())
    assert 0 <= report["accuracy_quantised"] <= 1 and 0 <= report["accuracy_int_weights_only"] <= 1
    # the chip's accuracy: XyloSim's rules on the mapped ints (xylosim), its output spike counts as scores
    chip = xylo_simulate(chip_config(mapped["quantised"]), x.transpose(0, 1))[1].sum(0)
    assert chip.sum() > 0 and report["accuracy_chip"] == (chip.argmax(1) == y).float().mean().item()


def test_xylo_folds_a_feedback_bias_into_the_neurons_bias():
    """``V s + b_rec`` acts every step: the mapped hidden bias is ``b_ff + b_rec``; the quantised model holds
    ``b_q / s`` in the feed-forward bias and 0 in the feedback's."""
    require("rockpool", "--target xylo")
    torch.manual_seed(0)
    rec = RecurrentSpiking(TimeDistributed(nn.Linear(8, 5)), LIF(decay=0.9), 5, bias=True)
    net = RateNetwork(nn.Identity(), nn.Sequential(rec, TimeDistributed(nn.Linear(5, 2))),
                      SpikeRateReadout(LIF(decay=0.9)), 1).eval()
    mapped = xylo_spec(net)
    b = (rec.feedforward.module.bias + rec.recurrent.module.bias).detach().numpy()
    assert np.allclose(mapped["float"]["bias"], b)
    q = quantised_model(net, mapped).body[0]
    s = np.asarray(mapped["quantised"]["threshold"], float) / np.asarray(mapped["float"]["threshold"], float)
    want = torch.as_tensor(np.asarray(mapped["quantised"]["bias"], float) / s, dtype=torch.float32)
    assert torch.equal(q.feedforward.module.bias, want) and not q.recurrent.module.bias.any()


def test_xylo_scales_biases_into_the_weights_integer_units_and_clips_them_to_int16():
    """Rockpool's ``channel_quantize`` only rounded a hidden bias (0.3 -> 0 on the chip, where the neuron's weights and
    threshold were scaled by ~400) and rounded the float spec's output biases in place (0.3 -> 135 in
    ``mapped["float"]``). Now each is ``round(b s)``, ``s = threshold_q / threshold`` by hand; one beyond int16 is
    clipped, with a line in ``tool_warnings``."""
    require("rockpool", "--target xylo")
    net = _dense([8, 5, 3])
    with torch.no_grad():
        for lin, _ in dense_layers(net):
            lin.bias.fill_(0.3)
    mapped = xylo_spec(net)
    q, fl = mapped["quantised"], mapped["float"]
    for sfx in ("", "_out"):
        s = np.asarray(q["threshold" + sfx], float) / np.asarray(fl["threshold" + sfx], float)
        assert np.allclose(fl["bias" + sfx], 0.3) and (s > 100).all()
        assert np.array_equal(q["bias" + sfx], np.rint(0.3 * s)) and mapped["tool_warnings"] == []
    with torch.no_grad():
        dense_layers(net)[0][0].bias.fill_(100.0)
    mapped = xylo_spec(net)
    assert np.ravel(mapped["quantised"]["bias"]).tolist() == [32767] * 5
    assert mapped["tool_warnings"] == [f"5 hidden neuron biases exceed int16 in the chip's units (up to "
                                       f"{int(np.rint(100 * _s_max(mapped)))}): clipped to [-32768, 32767]"]


def _s_max(mapped) -> float:
    """The largest hidden quantisation scale ``threshold_q / threshold``."""
    return float(np.max(np.asarray(mapped["quantised"]["threshold"], float) / mapped["float"]["threshold"]))


def test_xylo_keeps_a_neuron_without_input_weights_silent():
    """Hidden neuron 2 has no input weights: ``channel_quantize`` rounded its threshold 0.5 unscaled to 0, so on the
    chip (``v >= 0``) it fired 31 spikes every step of a silent input, and ``quantised_model`` divided its weights by
    a scale of 0 (NaN). Now its threshold is ``round(0.5 * 32767 / max(0.5, |b|))`` (its bias scaled alike)."""
    require("rockpool", "--target xylo")
    net = _dense([8, 5, 3], neuron=lambda: LIF(decay=0.9, threshold=0.5))
    lin = dense_layers(net)[0][0]
    with torch.no_grad():
        lin.weight[2].zero_()
    mapped = xylo_spec(net)
    q, b = mapped["quantised"], lin.bias[2].item()
    assert abs(b) < 0.5 and np.ravel(q["threshold"])[2] == 32767 and np.ravel(q["bias"])[2] == round(b * 32767 / 0.5)
    hidden, _ = xylo_simulate(chip_config(q), torch.zeros(5, 1, 8))
    assert not hidden.any()
    assert torch.isfinite(dense_layers(quantised_model(net, mapped))[0][0].weight).all()


def test_xylo_does_not_fit_a_net_whose_thresholds_round_to_0():
    """Threshold 0.001 against weights of ~0.3: 0.001 * 127 / max |w| rounds to 0, and on the chip every neuron fires
    from rest (31 spikes a hidden one, every step of a silent input); the report said fits: true."""
    require("rockpool", "--target xylo")
    net = _dense([8, 5, 3], neuron=lambda: LIF(decay=0.9, threshold=0.001))
    q = xylo_spec(net)["quantised"]
    assert not np.any(q["threshold"]) and not np.any(q["threshold_out"])
    assert (xylo_simulate(chip_config(q), torch.zeros(2, 1, 8))[0] == 31).all()
    report = xylo_report(net)
    assert not report["fits"] and report["reason"] == (
        "5 hidden neurons' thresholds round to 0 on the chip (below half an int8 weight step): they fire every step "
        "whatever their input; 3 output neurons' thresholds round to 0 on the chip (below half an int8 weight step): "
        "they fire every step whatever their input")
    assert xylo_report(_dense([8, 5, 3]))["fits"]


def _synaptic_net(th_hidden: float, th_out: float) -> RateNetwork:
    """1 input -> 1 hidden -> 1 output ``SynapticLIF`` (syn_decay 0.5, decay 0.5, reset subtract), weights 1."""
    def neuron(th):
        return SynapticLIF(NeuronParams(decay=0.5, threshold=th, reset="subtract"), syn_decay=0.5)

    lin1, lin2 = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin1.weight.fill_(1.0)
        lin2.weight.fill_(1.0)
    body = nn.Sequential(TimeDistributed(lin1), neuron(th_hidden), TimeDistributed(lin2))
    return RateNetwork(nn.Identity(), body, SpikeRateReadout(neuron(th_out)), 1).eval()


def test_xylo_maps_a_synaptic_lif_net_whose_chip_spikes_are_deepspikes_one_step_late_per_layer():
    """``SynapticLIF`` was refused, though Xylo's neuron is one. Chip: dash_syn = dash_mem = 1 (0.5), weights 127,
    thresholds ``round(a th 127)`` (a = 0.5: the chip decays the current before the membrane reads it, so the
    membrane holds ``a`` times deepspike's): 1.5 -> 95, 0.9 -> 57. By hand, input counts [1, 1, 0, ...]:
    hidden i = 127 -> 64, v = 64; i = 64 + 127 = 191 -> 96, v = 64 - 32 + 96 = 128 >= 95: spike, v = 33; then
    i 48, 24, ..., v 65, 57, ...: no spike. Output (hidden spike one step late, at t2): i = 127 -> 64, v = 64 >= 57:
    spike. deepspike (float): hidden v = 1, then 0.5 + 1.5 = 2 >= 1.5; output v = 1 >= 0.9 at t1: the same spikes,
    the output's a step earlier. Without the factor a (thresholds 190 and 114) neither would fire."""
    require("rockpool", "--target xylo")
    net = _synaptic_net(1.5, 0.9)
    mapped = xylo_spec(net)
    q = mapped["quantised"]
    assert [np.ravel(q[k]).tolist() for k in ("dash_syn", "dash_mem", "dash_syn_out", "dash_mem_out")] == [[1]] * 4
    assert np.ravel(q["threshold"]).tolist() == [95] and np.ravel(q["threshold_out"]).tolist() == [57]
    x = torch.tensor([1.0, 1.0, 0, 0, 0, 0])[:, None, None]  # [T, B = 1, 1]
    hidden, out = xylo_simulate(chip_config(q), x)
    assert hidden.ravel().tolist() == [0, 1, 0, 0, 0, 0] and out.ravel().tolist() == [0, 0, 1, 0, 0, 0]
    model = quantised_model(net, mapped)
    assert model.body[1].syn_decay == 0.5 and model.body[1].fixed.reset == "subtract"
    with torch.no_grad():
        ours_hidden = model.body[1](model.body[0](x))
        ours_out = model.readout.neuron(model.body[2](ours_hidden))
    assert torch.equal(ours_hidden.ravel(), hidden.ravel().float()) and torch.equal(ours_out.ravel()[:-1],
                                                                                   out.ravel()[1:].float())


def test_xylo_maps_a_synaptic_lif_of_small_syn_decay_as_a_lif():
    """syn_decay 0.2 rounds to dash 0 (log2(1.25) = 0.32): nearer no current than the chip's smallest (dash 1, 0.5), so
    it maps as a LIF (threshold unscaled: 1.5 -> round(1.5 * 127) = 190, not 95) and the re-simulation has no
    current (syn_decay 0); it was mapped with a = 0.5, as syn_decay 0.5 would be."""
    require("rockpool", "--target xylo")
    net = _synaptic_net(1.5, 0.9)
    for neuron in (net.body[1], net.readout.neuron):
        neuron.syn_decay = 0.2
    mapped = xylo_spec(net)
    assert np.ravel(mapped["quantised"]["threshold"]).tolist() == [190]
    assert np.ravel(mapped["quantised"]["dash_syn"]).tolist() == [1]
    assert quantised_model(net, mapped).body[1].syn_decay == 0.0


def test_export_xylo_reports_the_chips_accuracy_of_a_synaptic_lif_digits_run(tmp_path, capsys):
    require("rockpool", "--target xylo")
    run = tmp_path / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=4", "method.neuron=synaptic", "method.encoder=poisson",
                 "model.name=mlp", "model.args.hidden=[8]", "train.epochs=1", "train.max_steps_per_epoch=2",
                 "train.progress=false", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--target", "xylo", "--limit", "64"]) == 0
    report = json.loads(capsys.readouterr().out)["target"]
    assert 0 <= report["accuracy_chip"] <= 1 and report["accuracy_chip_cost"] == pytest.approx(
        report["accuracy_float"] - report["accuracy_chip"])


def test_xylo_refuses_a_recurrent_output_layer_in_one_line():
    """Rockpool's mapper refuses it too (design rule output_neurons_cannot_be_recurrent)."""
    require("rockpool", "--target xylo")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    out = RecurrentSpiking(TimeDistributed(nn.Linear(6, 3)), LIF(decay=0.9), 3)
    net = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(nn.Linear(8, 6)), LIF(decay=0.9)),
                      SpikeRateReadout(out), 1).eval()
    with pytest.raises(ConfigError, match=r"xylo: the output layer \(RecurrentSpiking\) cannot be recurrent") as e:
        xylo_report(net)
    assert "\n" not in str(e.value)
    graph = Sequential(LinearTorch((8, 6), has_bias=False), LIFTorch(6), LinearTorch((6, 3), has_bias=False),
                       LIFTorch(3, has_rec=True)).as_graph()
    with pytest.raises(ValueError, match="output_neurons_cannot_be_recurrent"):
        rockpool_xylo_mapper().mapper(graph)


@pytest.mark.parametrize(("net", "why"), [
    (lambda: _dense([16, 8]), r"at_least_two_neuron_layers_needed triggered an error: At least two layers of neurons "
                              r"are required"),
    (lambda: _dense([16, 24, 8], neuron=lambda: LIF(decay=1e-9)), r"has one or more time constants <= `dt`"),
])
def test_xylo_mapper_refusals_say_why_in_one_line(net, why):
    """Rockpool puts a design rule's reason on a second line, and its neuron conversion's in the exception's cause;
    the report kept the first line only ('... triggered an error:', 'Error replacing output neuron module ...')."""
    require("rockpool", "--target xylo")
    with pytest.raises(ConfigError, match=rf"^xylo: Rockpool's mapper refused the net: .*{why}") as e:
        xylo_report(net())
    assert "\n" not in str(e.value)
