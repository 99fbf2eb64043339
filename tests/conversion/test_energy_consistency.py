"""``deepspike convert``'s energy rows and ``deepspike analyze``'s energy table price the same run alike.

Both count the converted net's synaptic operations with the activity recorder and price them by one rule
(``layers.activity_records``: a spike event costs ACs, an analog value MACs), so on the same test images at the
same T they give the same ACs, MACs and SNN / ANN energy. The net (``scnn_digits`` at width 0.5:
8C3-16C3-AP2-16C3-AP2-FC on 8x8 digits) has every kind of input: the image (direct input, MACs) or Poisson
spikes (ACs), threshold-valued spikes ("channel" norm, ACs), binary spikes ("max" norm, ACs) and averages of
spikes after each pool (MACs).

The rule reads each call's input values, and convert cuts the simulation at every reported T (1-step chunks for
small T) where analyze runs T steps in one chunk: with direct input ("channel") the two agree exactly; with Poisson
input ("max") a sparse 1-step chunk of the last layer's input (averages of spikes, all one value per feature) can
read as spikes: measured 10 of 26 million operations (4e-7), hence the tolerance of 1e-5 there.
"""

import json

import pytest

from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.config.load import load_config
from deepspike.conversion.pipeline import convert_run
from deepspike.training.trainer import Trainer

T = 8
PRESETS = ("45nm_fp32", "45nm_int32")


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pricing")
    recipe = ["method.name=ann", "model.name=scnn_digits", "model.width=0.5", "data.name=digits",
              "train.epochs=1", "train.progress=false"]
    Trainer(load_config(None, recipe), root / "ann").fit()
    return root


@pytest.mark.parametrize("norm", ["channel", "max"])
def test_convert_and_analyze_give_the_same_energy(ann_run, norm):
    out = ann_run / f"snn_{norm}"
    summary = convert_run(ann_run / "ann", out, norm=norm, timesteps=T, calib_samples=32, log=lambda s: None)
    row = {r["timesteps"]: r for r in json.loads((out / "operations.json").read_text())["by_timesteps"]}[T]
    options = AnalysisOptions(limit=None, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)
    analysis = analyze_run(out, None, options)
    ops, rel = analysis["operations"], 1e-9 if norm == "channel" else 1e-5
    assert analysis["samples"] == 360  # the whole digits test split, as convert ran it
    assert row["snn_acs"] == pytest.approx(ops["snn_acs_per_sample"], rel=rel)
    assert row["snn_macs"] == pytest.approx(ops["snn_macs_per_sample"], rel=rel)
    assert row["snn_macs"] > 0 and row["snn_acs"] > 0  # both kinds of input are there
    for preset in PRESETS:
        analyze_ratio = 1.0 / analysis["energy"][preset]["ann_over_snn"]
        assert summary["energy_ratio_by_timesteps"][preset][str(T)] == pytest.approx(analyze_ratio, rel=rel)
        assert row[preset]["snn_pj"] == pytest.approx(analysis["energy"][preset]["snn_pj"], rel=rel)
        with_updates = analysis["energy"][preset]["snn_with_updates_pj"]
        assert row[preset]["snn_with_updates_pj"] == pytest.approx(with_updates, rel=rel)
        assert summary["energy_ratio_with_updates_by_timesteps"][preset][str(T)] == pytest.approx(
            1.0 / analysis["energy"][preset]["ann_over_snn_with_updates"], rel=rel)
    # the converted IF neurons' own updates, h = v + x and the threshold test: 2 ACs per neuron and step, no MAC
    # (channel's signed neurons: 5, with h < 0, n > 0 and n = n + s); channel's membrane readout: 10 non-spiking
    # output integrators, V = V + x, 1 AC each per step (not IF layers)
    neurons = sum(layer["neurons"] for layer in analysis["activity"]["layers"])
    readout, per_neuron = (10, 5) if norm == "channel" else (0, 2)
    assert (summary["readout"], summary["signed"]) == (("membrane", True) if readout else ("spike", False))
    assert [layer["name"] == "output" for layer in analysis["activity"]["layers"]].count(True) == (readout == 0)
    assert row["update_acs"] == analysis["activity"]["update_acs_per_sample"] == (per_neuron * neurons + readout) * T
    assert row["update_macs"] == analysis["activity"]["update_macs_per_sample"] == 0
