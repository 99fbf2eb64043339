"""``--target speck`` (Sinabs' DYNAP-CNN mapping) and ``--target xylo`` (Rockpool's Xylo mapper), offline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from conformance.conftest import require
from deepspike.cli import main
from deepspike.core.errors import ConfigError
from deepspike.deploy.families import build, input_shape
from deepspike.deploy.speck import speck_report
from deepspike.deploy.xylo import dense_layers, quantised_model, xylo_report, xylo_spec
from deepspike.layers.readout import SpikeRateReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.rate_network import RateNetwork
from deepspike.neurons.modules import IF, LIF


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


def test_xylo_reports_what_exceeds_the_chip_and_refuses_conv_nets():
    require("rockpool", "--target xylo")
    report = xylo_report(_dense([64, 32, 10]))
    assert not report["fits"] and report["reason"] == "64 input channels > 16; 10 output neurons > 8"
    with pytest.raises(ConfigError, match=r"xylo: layer 0 \(Conv2d\) cannot map"):
        xylo_report(build("conv", "LIF"))


def test_export_target_commands_on_a_trained_run(tiny_run, capsys):
    require("rockpool", "--target xylo")
    require("sinabs", "--target speck")
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--target", "xylo", "--limit", "64"]) == 0
    report = json.loads(capsys.readouterr().out)["target"]
    assert report["resources"] == {"inputs": 64, "hidden": 8, "outputs": 10} and not report["fits"]
    assert 0 <= report["accuracy_quantised"] <= 1 and report["accuracy_cost"] == pytest.approx(
        report["accuracy_float"] - report["accuracy_quantised"])
    assert main(["export", str(tiny_run), "--target", "speck"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: speck: ") and "leaky" in err and err.count("\n") == 1
