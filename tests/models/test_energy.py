"""Energy presets, against hand-computed numbers."""

import re

import pytest
import torch
from torch import nn

from deepspike.analysis.monitor import NetworkMonitor
from deepspike.core.errors import ConfigError
from deepspike.models.energy import (
    PRESETS,
    EnergyPreset,
    energy_pj,
    energy_table,
    get_energy_preset,
    parse_energy_preset,
    register_energy_preset,
)


def test_cited_presets():
    assert (PRESETS["45nm_fp32"].mac_pj, PRESETS["45nm_fp32"].ac_pj) == (4.6, 0.9)
    assert (PRESETS["45nm_int32"].mac_pj, PRESETS["45nm_int32"].ac_pj) == (3.2, 0.1)
    assert [PRESETS[k].spike_pj for k in ("zhou2021_neuron", "truenorth", "cao2015")] == [10.0, 26.0, 45.0]
    assert all(p.source for p in PRESETS.values())


def test_energy_by_hand():
    fp = get_energy_preset("45nm_fp32")
    assert energy_pj(fp, macs=10, acs=100, spikes=7) == pytest.approx(10 * 4.6 + 100 * 0.9)
    assert energy_pj(get_energy_preset("truenorth"), macs=10, acs=100, spikes=7) == pytest.approx(7 * 26)
    snn = {"macs_per_sample": 0.0, "acs_per_sample": 1000.0, "neuron_spikes_per_sample": 50.0}
    table = energy_table(2000, snn)
    assert table["45nm_int32"]["ann_pj"] == pytest.approx(6400) and table["45nm_int32"][
        "snn_pj"
    ] == pytest.approx(100)
    assert table["45nm_int32"]["ann_over_snn"] == pytest.approx(64)
    assert table["cao2015"] == {"ann_pj": None, "snn_pj": pytest.approx(2250), "ann_over_snn": None,
                                "snn_with_updates_pj": None, "ann_over_snn_with_updates": None}


def test_neuron_updates_add_their_macs_and_acs_by_hand():
    """1,000 ACs and 50 spikes of synapses, 300 MACs and 400 ACs of neuron updates; 45 nm int32 (MAC 3.2, AC 0.1 pJ):
    SNN 100 pJ, with the updates 100 + 960 + 40 = 1,100 pJ, ANN 6,400 pJ; a spike-only preset's spike holds its
    neuron: 2,250 pJ both ways."""
    snn = {"macs_per_sample": 0.0, "acs_per_sample": 1000.0, "neuron_spikes_per_sample": 50.0,
           "update_macs_per_sample": 300.0, "update_acs_per_sample": 400.0}
    table = energy_table(2000, snn)
    assert table["45nm_int32"]["snn_pj"] == pytest.approx(100)
    assert table["45nm_int32"]["snn_with_updates_pj"] == pytest.approx(1100)
    assert table["45nm_int32"]["ann_over_snn_with_updates"] == pytest.approx(6400 / 1100)
    assert table["cao2015"]["snn_with_updates_pj"] == pytest.approx(2250)


def test_user_presets():
    p = parse_energy_preset("mychip:ac=0.05,spike=2")
    assert (p.name, p.mac_pj, p.ac_pj, p.spike_pj) == ("mychip", 0.0, 0.05, 2.0)
    assert parse_energy_preset(" 28nm_int8-v1.2+:mac=0.2").name == "28nm_int8-v1.2+"
    register_energy_preset(EnergyPreset("tmp_test_chip", ac_pj=1.0, source="test"))
    assert get_energy_preset("tmp_test_chip").ac_pj == 1.0
    del PRESETS["tmp_test_chip"]
    for bad in ("nochip", "x:mac=abc", "x:volts=1"):
        with pytest.raises(ConfigError):
            parse_energy_preset(bad)
    for bad, message in (("x:mac=inf,ac=1", "mac_pj must be a finite number >= 0, got inf"),
                         ("x:mac=1e400", "mac_pj must be a finite number >= 0, got inf"),
                         ("x:spike=nan", "spike_pj must be a finite number >= 0, got nan"),
                         ("x:ac=1,ac=2", "ac given twice"),
                         ("45nm_fp32:mac=1,ac=1", "'45nm_fp32' is a built-in preset"),
                         # a report.md table cell: a pipe or a line break split the energy row
                         ("a|b:mac=1", "name 'a|b'; use letters, digits"),
                         ("a\nb:mac=1", "name 'a\\nb'; use letters, digits"),
                         ("my chip:ac=1", "name 'my chip'; use letters, digits")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_energy_preset(bad)
    with pytest.raises(ConfigError, match="unknown energy preset"):
        get_energy_preset("nope")


def test_energy_of_a_pooled_threshold_spike_net_by_hand():
    """conv1 (1x1, 1 -> 2, weights 0.5, 1.25) -> AvgPool2d(2) -> conv2 (1x1, 2 -> 3), 2 samples of binary spikes
    (``tests/layers/test_activity_records.py`` counts them): per sample 8 ACs (conv1's 4 input spikes x 2 and the
    pool's 8 threshold-valued spikes x 1) / 2 = 8, and 12 MACs (conv2 reads window averages) / 2 = 6. 45 nm fp32:
    8 x 0.9 + 6 x 4.6 = 34.8 pJ; int32: 8 x 0.1 + 6 x 3.2 = 20.0 pJ. ANN: conv1 4 x 2 + conv2 1 x 6 = 14 MACs (the
    pool's 8 additions are not MACs) = 64.4 / 44.8 pJ."""
    conv1, conv2 = nn.Conv2d(1, 2, 1, bias=False), nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv1.weight.copy_(torch.tensor([0.5, 1.25]).view(2, 1, 1, 1))
    net = nn.Sequential(conv1, nn.AvgPool2d(2), conv2)
    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]], [[[0.0, 1.0], [0.0, 0.0]]]])
    with torch.no_grad(), NetworkMonitor(net, codings=()) as monitor:
        net(x)
    summary = monitor.summary()
    assert (summary["acs_per_sample"], summary["macs_per_sample"]) == (8, 6)
    table = energy_table(14, summary)
    assert table["45nm_fp32"]["snn_pj"] == pytest.approx(34.8) and table["45nm_fp32"]["ann_pj"] == pytest.approx(64.4)
    assert table["45nm_int32"]["snn_pj"] == pytest.approx(20.0) and table["45nm_int32"]["ann_pj"] == pytest.approx(44.8)
    assert table["45nm_fp32"]["ann_over_snn"] == pytest.approx(64.4 / 34.8)


def test_prices_that_make_an_energy_infinite_are_refused():
    """Each price is finite, but 1e308 pJ times 2,000 MACs is not: the report showed 'inf' and 'nan' cells and
    analysis.json null energies, in silence."""
    big = EnergyPreset("tmp_big_chip", mac_pj=1e308, ac_pj=1e308, spike_pj=1e308, source="test")
    snn = {"macs_per_sample": 0.0, "acs_per_sample": 1000.0, "neuron_spikes_per_sample": 50.0}
    message = "energy preset 'tmp_big_chip' prices an inference beyond the float range (inf pJ)"
    with pytest.raises(ConfigError, match=re.escape(message)):
        energy_pj(big, acs=1000)
    register_energy_preset(big)
    try:
        with pytest.raises(ConfigError, match=re.escape(message)):
            energy_table(2000, None)  # the ANN's 2,000 MACs
        with pytest.raises(ConfigError, match=re.escape(message)):
            energy_table(0, snn)
    finally:
        del PRESETS["tmp_big_chip"]
    assert energy_pj(EnergyPreset("x", mac_pj=1e300), macs=2000) == pytest.approx(2e303)  # large but finite
