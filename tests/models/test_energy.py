"""Energy presets, against hand-computed numbers."""

import pytest

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
    assert table["cao2015"] == {"ann_pj": None, "snn_pj": pytest.approx(2250), "ann_over_snn": None}


def test_user_presets():
    p = parse_energy_preset("mychip:ac=0.05,spike=2")
    assert (p.name, p.mac_pj, p.ac_pj, p.spike_pj) == ("mychip", 0.0, 0.05, 2.0)
    register_energy_preset(EnergyPreset("tmp_test_chip", ac_pj=1.0, source="test"))
    assert get_energy_preset("tmp_test_chip").ac_pj == 1.0
    del PRESETS["tmp_test_chip"]
    for bad in ("nochip", "x:mac=abc", "x:volts=1"):
        with pytest.raises(ConfigError):
            parse_energy_preset(bad)
    with pytest.raises(ConfigError, match="unknown energy preset"):
        get_energy_preset("nope")
