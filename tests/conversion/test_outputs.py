"""What ``convert_run`` writes (``conversion.outputs``): the per-T energy rows of ``operations.json`` by hand and
``thresholds.json``'s input scale."""

import json

import pytest

from deepspike.conversion.accuracy_sweep import AccuracySweep
from deepspike.conversion.outputs import operations, write_thresholds
from deepspike.methods.converted import ConvertedOptions
from deepspike.models.spec import Architecture, Flatten, Linear

# Flatten -> Linear(3) -> Linear(2) on a (1, 1, 4) input, bias-free: ANN MACs 4 * 3 + 3 * 2 = 18 per sample.
ARCH = Architecture("two", (Flatten(), Linear(3), Linear(2, act=False)), (1, 1, 4), 2)


def _sweep(first_layer_macs: bool) -> AccuracySweep:
    """Two marks (T = 1, 2): layer "0" does 8 then 16 operations per sample, layer "1" 2 then 6; with
    ``first_layer_macs`` the recorder found layer "0"'s inputs analog (all its operations MACs), else spikes."""
    macs = [{"0": 8.0, "1": 0.0}, {"0": 16.0, "1": 0.0}] if first_layer_macs else [{"0": 0.0, "1": 0.0}] * 2
    return AccuracySweep(
        marks=[1, 2], accuracy=[0.5, 0.75], samples=4, seconds=0.0, spikes={"a": 5.0, "b": 2.0},
        neurons={"a": 3, "b": 2}, accumulates={"0": 16.0, "1": 6.0},
        accumulates_at=[{"0": 8.0, "1": 2.0}, {"0": 16.0, "1": 6.0}], spikes_at=[3.0, 7.0], macs_at=macs,
    )


def test_energy_rows_by_hand_from_the_horowitz_constants():
    """Horowitz 2014 (45 nm, as ``models.energy`` cites it): fp32 MAC 4.6 pJ / AC 0.9 pJ, int32 MAC 3.2 pJ /
    AC 0.1 pJ. Spike input: every event is an AC, the ANN pays its 18 MACs."""
    ops = operations(ARCH, _sweep(first_layer_macs=False), direct_input=False)
    assert ops["ann_macs_per_sample"] == 18
    rows = {row["timesteps"]: row for row in ops["by_timesteps"]}
    assert (rows[2]["snn_acs"], rows[2]["snn_macs"], rows[2]["spikes"]) == (22.0, 0.0, 7.0)  # 16 + 6 events
    fp32, int32 = rows[2]["45nm_fp32"], rows[2]["45nm_int32"]
    assert fp32["snn_pj"] == pytest.approx(19.8)  # 22 ACs * 0.9
    assert fp32["ann_pj"] == pytest.approx(82.8)  # 18 MACs * 4.6
    assert fp32["snn_over_ann"] == pytest.approx(19.8 / 82.8)
    assert int32["snn_pj"] == pytest.approx(2.2)  # 22 * 0.1
    assert int32["ann_pj"] == pytest.approx(57.6)  # 18 * 3.2
    assert int32["snn_over_ann"] == pytest.approx(2.2 / 57.6)
    assert rows[1]["45nm_fp32"]["snn_pj"] == pytest.approx(9.0)  # T = 1: 8 + 2 = 10 ACs * 0.9


def test_analog_first_layer_energy_rows_by_hand():
    """Analog input to the first layer: its 16 events at T = 2 are MACs, the other 6 ACs (Horowitz 2014)."""
    rows = {row["timesteps"]: row for row in operations(ARCH, _sweep(True), direct_input=True)["by_timesteps"]}
    assert (rows[2]["snn_acs"], rows[2]["snn_macs"]) == (6.0, 16.0)
    fp32, int32 = rows[2]["45nm_fp32"], rows[2]["45nm_int32"]
    assert fp32["snn_pj"] == pytest.approx(79.0)  # 16 * 4.6 + 6 * 0.9 = 73.6 + 5.4
    assert fp32["snn_over_ann"] == pytest.approx(79.0 / 82.8)  # ANN: 18 * 4.6
    assert int32["snn_pj"] == pytest.approx(51.8)  # 16 * 3.2 + 6 * 0.1 = 51.2 + 0.6
    assert int32["snn_over_ann"] == pytest.approx(51.8 / 57.6)  # ANN: 18 * 3.2


def test_the_if_driven_ratio_leaves_out_the_input_driven_first_layer_as_sengupta2019_section_7_4():
    """``ratio`` = all 16 + 6 = 22 SNN operations over the ANN's 18 MACs; sengupta2019's ratio "includes only ReLU/IF
    spiking neuron activations": layer "1"'s 6 operations over the ANN's 3 * 2 = 6 MACs of the same layer = 1.0
    (with direct input the first layer's 16 are MACs, 16 / 22 of the total)."""
    for analog in (False, True):
        ops = operations(ARCH, _sweep(first_layer_macs=analog), direct_input=analog)
        assert ops["ratio"] == pytest.approx(22 / 18)
        assert ops["if_driven"] == {"snn_operations_per_sample": 6.0, "ann_macs_per_sample": 6, "ratio": 1.0}


def test_energy_rows_price_what_the_recorder_found_not_the_layer_position():
    """The MACs are the recorder's, whatever the layer's place: spike input (``direct_input=False``) whose second
    layer read analog values (e.g. averages of spikes after a pool: 2 then 6 MACs) is priced so, and a direct-input
    net whose first layer read spikes has no MACs. T = 2: 16 ACs * 0.9 + 6 MACs * 4.6 = 14.4 + 27.6 = 42.0 pJ."""
    sweep = _sweep(False)
    sweep.macs_at = [{"0": 0.0, "1": 2.0}, {"0": 0.0, "1": 6.0}]
    ops = operations(ARCH, sweep, direct_input=False)
    row = {r["timesteps"]: r for r in ops["by_timesteps"]}[2]
    assert (row["snn_acs"], row["snn_macs"]) == (16.0, 6.0)
    assert row["45nm_fp32"]["snn_pj"] == pytest.approx(42.0)
    assert row["45nm_fp32"]["snn_over_ann"] == pytest.approx(42.0 / 82.8)
    assert [d["macs_per_sample"] for d in ops["layers"]] == [0.0, 6.0]
    direct = operations(ARCH, _sweep(False), direct_input=True)["by_timesteps"][-1]
    assert (direct["snn_acs"], direct["snn_macs"]) == (22.0, 0.0)


def test_energy_row_acs_are_the_spike_layers_operations_exactly():
    """A direct-input net at T = 2 (measured on a digits QCFS VGG): the first layer's 8367.36 operations per sample are
    MACs, the pool after the first IF layer has 1.92 ACs (its 1.92 input spikes). The ACs are the AC layers' sum,
    1.92; taken as all operations less the MACs, (8367.36 + 1.92) - 8367.36, they read 1.9200000000000728."""
    sweep = _sweep(True)
    sweep.accumulates_at = [{"0": 8367.36, "1": 1.92}] * 2
    sweep.macs_at = [{"0": 8367.36, "1": 0.0}] * 2
    row = operations(ARCH, sweep, direct_input=True)["by_timesteps"][-1]
    assert (row["snn_acs"], row["snn_macs"]) == (1.92, 8367.36)


@pytest.mark.parametrize(("encoding", "recorded"), [("poisson", 2.5), ("direct", 1.0)])
def test_thresholds_json_records_the_input_scale_the_thresholds_were_balanced_against(tmp_path, encoding, recorded):
    """Calibration images with max|x| = 2.5 (``input_scale``): Poisson input sends |x| / 2.5, so the first threshold
    is lambda_1 / 2.5 and 2.5 is recorded; direct input sends x itself, the thresholds are balanced against 1 and 1 is
    recorded (before: 2.5, which the direct run never used)."""
    options = ConvertedOptions(timesteps=4, norm="max", encoding=encoding, input_scale=2.5, thresholds=[1.2, 0.7])
    write_thresholds(tmp_path, options, ["a", "b"], ["plain", "output"])
    record = json.loads((tmp_path / "thresholds.json").read_text())
    assert record["input_scale"] == recorded
    assert record["layers"] == [{"name": "a", "role": "plain", "threshold": 1.2},
                                {"name": "b", "role": "output", "threshold": 0.7}]
