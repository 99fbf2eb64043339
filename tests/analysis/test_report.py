"""End to end on tiny digits runs: `analyze` writes JSON, Markdown and PNGs; `compare` tables; QAT stages."""

import argparse
import json
import math
import re
import weakref
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from deepspike.analysis import qat as qat_module
from deepspike.analysis import report as report_module
from deepspike.analysis.activity import measure_activity
from deepspike.analysis.compare import compare_runs, comparison_row, markdown_table
from deepspike.analysis.monitor import NetworkMonitor
from deepspike.analysis.qat import quantization_aware_retrain
from deepspike.analysis.quantize import quantization_levels
from deepspike.analysis.report import AnalysisOptions, analyze_run, cost_sections, load_test_batches, markdown_report
from deepspike.analysis.timesteps import sweep as timestep_rows
from deepspike.api.reports import spike_activity
from deepspike.cli import main
from deepspike.commands import analyze as analyze_cmd
from deepspike.commands import compare as compare_cmd
from deepspike.config import load_config
from deepspike.conversion.pipeline import convert_run
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models.registry import create_architecture
from deepspike.neurons.modules import SpikingNeuron
from deepspike.training import run_setup
from deepspike.training.evaluate import EVAL_SEED, eval_pass, evaluate
from deepspike.training.reload import evaluate_run
from deepspike.training.trainer import Trainer
from fake_ttfs import FakeTTFS
from wta_run import trained_wta_run

COMMON = [
    "model.name=mlp",
    "model.args.hidden=[16]",
    "data.name=digits",
    "train.epochs=1",
    "train.progress=false",
    "optim.lr=0.02",
    "train.eval_batch_size=512",
]
RUNS = {
    "stbp": ["method.name=stbp", "method.timesteps=3", "method.encoder=poisson", "method.loss=ce"],
    "ann": ["method.name=ann"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, overrides in RUNS.items():
        Trainer(load_config(None, overrides + COMMON), root / name).fit()
    return root


def _parse(module, argv):
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    return p.parse_args(argv)


def test_analyze_command_writes_report(runs, tmp_path):
    out = tmp_path / "report"
    args = _parse(
        analyze_cmd,
        [
            str(runs / "stbp"),
            "--out",
            str(out),
            "--limit",
            "0",
            "--bits",
            "32,4,2",
            "--snr",
            "20",
            "--deletion",
            "0,0.5",
        ],
    )
    assert analyze_cmd.run(args) == 0
    for name in (
        "analysis.json",
        "report.md",
        "activity.png",
        "spike_times.png",
        "timesteps.png",
        "bits.png",
        "snr.png",
        "deletion.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "bits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    a = json.loads((out / "analysis.json").read_text())
    # the whole test set with the evaluation seed: the same accuracy as `deepspike eval`
    assert a["accuracy"] == evaluate_run(runs / "stbp")["test_accuracy"]
    assert a["samples"] == 360 and a["latency"] == {"kind": "timesteps", "value": 3}
    # spikes agree with plain forward hooks summing every neuron module's output (same seed), and
    # ACs = spikes x fan-out by hand
    _, parts, batches = load_test_batches(runs / "stbp", None)
    act = a["activity"]
    total = [0.0]

    def add_spikes(module, inputs, output):
        total[0] += float(output.sum())

    neurons = [m for m in parts.model.modules() if getattr(m, "is_spiking_neuron", False)]
    handles = [m.register_forward_hook(add_spikes) for m in neurons]
    with eval_pass(parts.model, EVAL_SEED), torch.no_grad():
        for x, _ in batches:
            parts.model(x)
    for h in handles:
        h.remove()
    assert neurons and total[0] > 0
    assert act["neuron_spikes_per_sample"] == pytest.approx(total[0] / 360)
    assert act["neuron_spikes_per_sample"] == pytest.approx(measure_activity(parts.model, batches).spikes_per_sample)
    hidden = next(d for d in act["layers"] if d["name"] == "body.2")["spikes_per_sample"]
    assert act["acs_per_sample"] == pytest.approx(act["input_spikes_per_sample"] * 16 + hidden * 10)
    assert act["input_spikes_per_sample"] > 0 and 0 < act["sparsity"] <= 1
    assert [r["timesteps"] for r in a["sweeps"]["timesteps"]] == [1, 2, 3]
    assert a["sweeps"]["timesteps"][-1]["accuracy"] == a["accuracy"]
    assert a["sweeps"]["bits"][0]["accuracy"] == a["accuracy"]  # 32 bits = full precision
    assert a["sweeps"]["deletion"][0]["accuracy"] == a["accuracy"]  # p = 0 changes nothing
    assert a["accuracy_4bit"] == a["sweeps"]["bits"][1]["accuracy"]
    assert a["operations"]["ann_macs_per_sample"] == 64 * 16 + 16 * 10
    # SNN synaptic operations over ANN MACs (64 * 16 + 16 * 10 = 1184 by hand), not the other way round
    assert act["synops_per_sample"] > 0
    assert a["operations"]["snn_over_ann"] == pytest.approx(act["synops_per_sample"] / 1184)
    md = (out / "report.md").read_text()
    assert "![Post-training weight quantization](bits.png)" in md and "| body.2 | rate | 16 |" in md


def test_ann_run_has_no_spikes(runs):
    a = analyze_run(runs / "ann", None, AnalysisOptions(limit=50, bits=(4,), snrs=(), plots=False))
    assert a["activity"] is None and a["latency"] is None
    assert a["energy"]["45nm_fp32"]["ann_pj"] == pytest.approx((64 * 16 + 16 * 10) * 4.6)
    assert "timesteps" not in a["sweeps"] and "deletion" not in a["sweeps"]


def test_a_rate_network_whose_neurons_are_not_recognised_is_refused(runs, monkeypatch):
    """A user's neuron without ``is_spiking_neuron`` (here: LIF with the mark taken away) made the analysis report
    the ANN's operations and energy for a spiking run."""
    monkeypatch.setattr(SpikingNeuron, "is_spiking_neuron", False)
    with pytest.raises(ConfigError, match="^analysis found no spiking neuron in this rate-coded network"):
        analyze_run(runs / "stbp", None, AnalysisOptions(limit=50, bits=(4,), snrs=(), plots=False))


def test_compare_table(runs, tmp_path, capsys):
    rows = compare_runs([runs / "stbp", runs / "ann"], limit=100)
    assert [r["method"] for r in rows] == ["stbp", "ann"]
    assert rows[0]["latency"] == "T=3" and rows[0]["spikes/inf"] > 0 and rows[1]["spikes/inf"] is None
    assert rows[1]["synops/inf"] == rows[1]["ANN MACs/inf"] == 64 * 16 + 16 * 10
    assert rows[1]["energy (nJ)"] == pytest.approx((64 * 16 + 16 * 10) * 4.6 / 1000)
    table = markdown_table(rows)
    assert table.count("\n") == 4 and "| stbp | mlp |" in table
    args = _parse(
        compare_cmd,
        [str(runs / "stbp"), str(runs / "ann"), "--limit", "100", "--out", str(tmp_path / "t.md")],
    )
    assert compare_cmd.run(args) == 0
    assert capsys.readouterr().out == table == (tmp_path / "t.md").read_text()


@pytest.mark.slow
def test_quantization_aware_retraining(runs, tmp_path):
    results = quantization_aware_retrain(runs / "stbp", tmp_path / "qat", stages=(8, 2), epochs=1)
    assert [r["bits"] for r in results] == [8, 2]
    for r in results:
        stage = tmp_path / "qat" / f"bits{r['bits']}"
        # the saved run holds the quantized weights: reloading scores exactly what the fake-quantized net did
        assert evaluate_run(stage)["test_accuracy"] == r["test_accuracy"]
    _, parts, _ = load_test_batches(tmp_path / "qat" / "bits2", 1)
    assert all(n <= 3 for n in quantization_levels(parts.model).values())
    _, parts8, _ = load_test_batches(tmp_path / "qat" / "bits8", 1)
    assert max(quantization_levels(parts8.model).values()) > 3
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in parts.model.modules())


def _script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_methods.py"
    spec = importlib.util.spec_from_file_location("compare_methods", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_methods_script_updates_only_its_block(runs, tmp_path, capsys):
    script = _script()
    assert script.find_runs(runs, "digits") == [runs / "ann", runs / "stbp"]  # ordered by method
    assert script.find_runs(runs, "fashion_mnist") == []
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nkeep me\n")
    assert (
        script.main(
            ["--runs-dir", str(runs), "--dataset", "digits", "--limit", "100", "--write", str(results)]
        )
        == 0
    )
    table = capsys.readouterr().out
    first = results.read_text()
    assert first.startswith("# Results\n\nkeep me\n") and table in first and first.count(script.BEGIN) == 1
    assert (
        script.main(
            ["--runs-dir", str(runs), "--dataset", "digits", "--limit", "100", "--write", str(results)]
        )
        == 0
    )
    assert results.read_text() == first  # regenerating replaces the block in place


def test_analysis_json_is_strict(runs, tmp_path, monkeypatch):
    """issue 19, item 9: a NaN in the analysis (here an accuracy the weight-noise sweep returns as NaN) is written
    as null; analysis.json parses with a reader that refuses NaN/Infinity."""
    def nan_sweep(*args, **kwargs):
        return [{"snr_db": 20.0, "accuracy": math.nan}]

    monkeypatch.setattr(report_module.sweeps, "sweep_snr", nan_sweep)
    options = AnalysisOptions(limit=50, bits=(), snrs=(20.0,), deletions=(), jitters=(), timesteps=False,
                              plots=False)
    analyze_run(runs / "stbp", tmp_path, options)
    text = (tmp_path / "analysis.json").read_text()
    parsed = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
    assert parsed["sweeps"]["snr"][0]["accuracy"] is None


@pytest.mark.parametrize("points, words", [({"snrs": (math.nan,)}, "bad snrs sweep point nan"),
                                           ({"snrs": ("40",)}, "bad snrs sweep point '40'"),
                                           ({"snrs": 40}, "snrs must be a list"),
                                           ({"bits": (8, 1)}, "bad bits sweep point 1"),
                                           ({"bits": (2.5,)}, "bad bits sweep point 2.5"),
                                           ({"bits": (8, 65)}, "bad bits sweep point 65"),
                                           ({"deletions": (1.5,)}, "bad deletions sweep point 1.5"),
                                           ({"jitters": (-0.1,)}, "bad jitters sweep point -0.1"),
                                           ({"snrs": (40, 1.7e308)}, "bad snrs sweep point 1.7e.308: expected num"),
                                           ({"jitters": (0, 2e300)}, "bad jitters sweep point 2e.300"),
                                           ({"bits": (8, 4, 4)}, r"^bits sweep point 4 is given twice in \(8, 4, 4\): "
                                                                 "give each point once$"),
                                           ({"snrs": (20, 20.0)}, "snrs sweep point 20.0 is given twice"),
                                           ({"deletions": (0, 0.0)}, "deletions sweep point 0.0 is given twice"),
                                           ({"jitters": [0.1, 0.1]}, "jitters sweep point 0.1 is given twice")])
def test_sweep_points_no_sweep_can_run_are_refused_before_loading(tmp_path, points, words):
    """Through the library (the command line checks its flags itself): refused before the run is even read, so a
    folder that holds no run does not matter."""
    with pytest.raises(ConfigError, match=words):
        analyze_run(tmp_path / "no-run", None, AnalysisOptions(**points))


@pytest.mark.parametrize("flag", ["--snr", "--deletion", "--jitter"])
def test_analyze_refuses_non_finite_sweep_points(runs, tmp_path, capsys, flag):
    out = tmp_path / "report"
    assert main(["analyze", str(runs / "stbp"), "--out", str(out), flag, "20,nan"]) == 2
    err = capsys.readouterr().err
    assert err == f"deepspike: error: {flag} nan is not a finite number; give comma-separated numbers, e.g. 40,20\n"
    assert not out.exists()


def test_compare_never_writes_over_a_run_file(runs, tmp_path, capsys):
    summary = (runs / "ann" / "summary.json").read_bytes()
    for out, message in ((runs / "ann" / "summary.json", "is the run file summary.json"),
                         (tmp_path, "is a folder"), (tmp_path / "f" / "t.md", "is a file, not a folder")):
        (tmp_path / "f").write_text("")
        assert main(["compare", str(runs / "ann"), "--limit", "50", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert (runs / "ann" / "summary.json").read_bytes() == summary


def test_compare_never_writes_over_an_analysis_or_its_input(runs, tmp_path, capsys):
    (tmp_path / "an").mkdir()
    analysis = tmp_path / "an" / "analysis.json"
    analysis.write_text("{}")
    readme = tmp_path / "notes.md"
    readme.write_text("mine")
    for out, inputs in ((analysis, [runs / "ann"]), (tmp_path / "x" / "report.md", [runs / "ann"]),
                        (readme, [runs / "ann", readme])):
        assert main(["compare", *map(str, inputs), "--limit", "50", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "would replace an analysis or an input" in err and err.count("\n") == 1
    assert analysis.read_text() == "{}" and readme.read_text() == "mine"


def test_analyze_refuses_a_preset_named_twice(runs, tmp_path, capsys):
    args = ["analyze", str(runs / "ann"), "--out", str(tmp_path / "a"), "--add-preset", "chip:mac=1",
            "--add-preset", "chip:mac=2"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "energy presets given twice: ['chip']" in err and err.count("\n") == 1
    assert not (tmp_path / "a").exists()


def test_analyze_out_that_cannot_be_a_folder_is_one_line(runs, tmp_path, capsys):
    (tmp_path / "f").write_text("mine")
    for out in (tmp_path / "f", tmp_path / "f" / "report"):
        assert main(["analyze", str(runs / "ann"), "--limit", "50", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "not a folder" in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and (tmp_path / "f").read_text() == "mine"


def test_an_analysis_killed_while_plotting_leaves_the_earlier_report_as_it_was(runs, tmp_path, monkeypatch):
    """The PNGs are drawn into a hidden folder and moved in only when all are done: a plot that failed midway left
    the PNGs drawn before it (activity.png, spike_times.png of the new analysis) beside the earlier analysis.json and
    report.md. Now the earlier report stays whole, byte for byte, and nothing of the new one is left behind."""
    options = AnalysisOptions(limit=20, bits=(32, 4), snrs=(), deletions=(), timesteps=False, raster=0, traces=0)
    analyze_run(runs / "stbp", tmp_path, options)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"analysis.json", "report.md", "activity.png", "bits.png"} <= set(before)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("deepspike.analysis.plots.plot_curve", killed)  # after activity.png and spike_times.png
    with pytest.raises(KeyboardInterrupt):
        analyze_run(runs / "stbp", tmp_path, AnalysisOptions(**{**vars(options), "limit": 10}))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_new_analysis_leaves_no_figure_of_an_earlier_one_it_does_not_draw(runs, tmp_path):
    """Analysed again into the same folder without the bits and deletion sweeps and the raster, the earlier
    bits.png, deletion.png and raster.png stayed beside the new analysis.json (which has none of them); without plots
    every earlier PNG stayed. A file that is not one of the analysis' figures is left alone."""
    full = AnalysisOptions(limit=20, bits=(32, 4), snrs=(), deletions=(0.0, 0.5), timesteps=False, traces=0)
    analyze_run(runs / "stbp", tmp_path, full)
    (tmp_path / "notes.png").write_bytes(b"mine")
    drawn = {"activity.png", "spike_times.png", "raster.png", "bits.png", "deletion.png", "notes.png"}
    assert {p.name for p in tmp_path.glob("*.png")} == drawn
    fewer = AnalysisOptions(limit=20, bits=(), snrs=(), deletions=(), timesteps=False, raster=0, traces=0)
    analyze_run(runs / "stbp", tmp_path, fewer)
    assert {p.name for p in tmp_path.glob("*.png")} == {"activity.png", "spike_times.png", "notes.png"}
    assert re.findall(r"\]\((\w+\.png)\)", (tmp_path / "report.md").read_text()) == ["activity.png",
                                                                                      "spike_times.png"]
    analyze_run(runs / "stbp", tmp_path, AnalysisOptions(**{**vars(fewer), "plots": False}))
    assert [p.name for p in tmp_path.glob("*.png")] == ["notes.png"]


def test_a_bf16_run_is_scored_by_eval_and_analyze_as_training_scored_it(tmp_path):
    """train.precision=bf16 trains and scores under bfloat16 autocast; eval, analyze, timesteps and a QAT stage
    reload the run and must run it the same way, else they score another model (float32 eval: 0.7194 against the
    summary's 0.725)."""
    recipe = ["method.name=stbp", "method.timesteps=8", "method.decay=0.5", "method.threshold=0.5",
              "method.loss=mse", "model.name=scnn_digits", "data.name=digits", "optim.lr=0.003", "train.epochs=1",
              "train.batch_size=32", "train.progress=false", "train.precision=bf16"]
    summary = Trainer(load_config(None, recipe), tmp_path / "run").fit()
    assert evaluate_run(tmp_path / "run")["test_accuracy"] == summary["test_accuracy"]
    options = AnalysisOptions(limit=None, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)
    assert analyze_run(tmp_path / "run", None, options)["accuracy"] == summary["test_accuracy"]
    assert timestep_rows([tmp_path / "run"], [8])[1][0]["accuracy"] == summary["test_accuracy"]
    stage = quantization_aware_retrain(tmp_path / "run", tmp_path / "qat", stages=(8,), epochs=1)[0]
    assert evaluate_run(tmp_path / "qat" / "bits8")["test_accuracy"] == stage["test_accuracy"]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a caller's own autocast reaches the model through evaluate
        _, parts, batches = load_test_batches(tmp_path / "run", None)
        assert evaluate(parts.model, parts.method, batches)["accuracy"] == summary["test_accuracy"]
        as_trained = measure_activity(parts.model, batches)
    assert spike_activity(tmp_path / "run") == as_trained  # the API's activity too (it ran in float32)
    assert measure_activity(parts.model, batches) != as_trained  # (float32 spikes differ: the check can fail)


def test_qat_retrains_with_the_runs_own_step_settings(runs, tmp_path, monkeypatch):
    """A QAT stage trains as its config.yaml says: the run's precision, layout and temporal-gradient mode reach the
    Trainer's step, and the stage's config keeps no weight average (none is kept)."""
    seen = []
    original = qat_module.train_epoch

    def recording(*args, **kwargs):
        seen.append({k: kwargs[k] for k in ("precision", "channels_last", "temporal_grad", "sltt_steps")})
        return original(*args, **kwargs)

    monkeypatch.setattr(qat_module, "train_epoch", recording)
    source = tmp_path / "sltt"
    Trainer(load_config(None, RUNS["stbp"] + COMMON + ["train.temporal_grad=sltt", "train.sltt_steps=2",
                                                        "train.ema_decay=0.9"]), source).fit()
    quantization_aware_retrain(source, tmp_path / "qat", stages=(8,), epochs=1)
    assert seen == [{"precision": None, "channels_last": False, "temporal_grad": "sltt", "sltt_steps": 2}]
    stage = load_config(tmp_path / "qat" / "bits8" / "config.yaml")
    assert stage.train.temporal_grad == "sltt" and stage.train.ema_decay is None


def test_spike_activity_counts_a_rate_coded_run_and_refuses_an_ann(runs):
    """An ann run gave an empty Activity (0 spikes per sample) without a word."""
    activity = spike_activity(runs / "stbp")
    assert activity.layers and activity.spikes_per_sample > 0
    with pytest.raises(ConfigError, match="its ann net has no rate-coded spiking layer to count spikes of$"):
        spike_activity(runs / "ann")


def test_the_mesh_maps_the_voting_classifier_the_method_built():
    """stbp's voting layer (vote_group G = 3) widens the K = 10 classifier to 30 neurons of 5 x 30 = 150 weights (the
    net's parameters: 64 x 5 + 150 = 470); the mesh mapped the spec's 10 neurons of 50 weights. The ANN reference
    stays the spec's: 64 x 5 + 5 x 10 = 370 MACs."""
    method = get_method("stbp", {"timesteps": 2, "vote_group": 3, "encoder": "poisson"})
    arch = create_architecture("mlp", 10, (1, 8, 8), hidden=[5])
    parts = SimpleNamespace(model=method.build(arch).eval(), method=method, arch=arch)
    assert sum(p.numel() for p in parts.model.parameters()) == 470
    result = {}
    batches = [(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))]
    options = AnalysisOptions(bits=(), snrs=(), deletions=(), timesteps=False, plots=False, raster=0, traces=0)
    report_module._measure(parts, batches, options, result)
    assert [(d["neurons"], d["weights"]) for d in result["hardware"]["layers"]] == [(5, 320), (30, 150)]
    assert result["operations"]["ann_macs_per_sample"] == 370


def test_spike_activity_runs_the_test_split_one_batch_at_a_time(runs, monkeypatch):
    """It gathered the whole test split on the net's device before running it (all 36 batches of 10 digits alive at
    once: an ImageNet-sized split whole on the GPU); now the batch being run and the one before it at most."""
    refs, most = [], [0]
    original = run_setup.BatchIterator

    def small_batches(*args, **kwargs):
        for x, y in original(*args, **{**kwargs, "batch_size": 10}):
            refs.append(weakref.ref(x))
            most[0] = max(most[0], sum(ref() is not None for ref in refs))
            yield x, y

    monkeypatch.setattr(run_setup, "BatchIterator", small_batches)
    activity = spike_activity(runs / "stbp")
    assert len(refs) == 36 and activity.layers[0].samples == 360 and most[0] <= 2


def test_qat_spreads_its_schedule_over_the_steps_an_epoch_takes(tmp_path, monkeypatch):
    """A linear schedule to 0 over one epoch of ``train.max_steps_per_epoch=2`` steps: the second (last) step takes
    half the rate, ``lr (1 - 1/2)``. It was spread over all 23 training batches of digits, so the last of the two
    steps took ``lr (1 - 1/23)`` (0.0191), and the decay never ran its course."""
    rates = []
    original = qat_module.train_epoch
    monkeypatch.setattr(qat_module, "train_epoch", lambda *a, **k: rates.append(original(*a, **k)["lr"]) or {
        "train_accuracy": 0.0})
    source = tmp_path / "ann"
    Trainer(load_config(None, RUNS["ann"] + COMMON + ["train.max_steps_per_epoch=2", "schedule.name=linear",
                                                       "schedule.min_factor=0"]), source).fit()
    quantization_aware_retrain(source, tmp_path / "qat", stages=(8,), epochs=1)
    assert rates == [pytest.approx(0.02 * 0.5)]


def test_a_psn_run_is_analysed_without_the_sweep_over_time_steps(tmp_path):
    """PSN's [T, T] weights run at their own T only: the default analysis left the sweep in and failed on it."""
    run = tmp_path / "psn"
    Trainer(load_config(None, [*RUNS["stbp"], "method.neuron=psn", "method.encoder=direct", *COMMON]), run).fit()
    result = analyze_run(run, tmp_path / "an", AnalysisOptions(limit=50, bits=(), snrs=(), deletions=(), jitters=(),
                                                               plots=False))
    assert "timesteps" not in result["sweeps"] and result["accuracy"] is not None


def test_analyze_refuses_a_preset_whose_energy_is_beyond_the_float_range(runs, tmp_path, capsys):
    """``--add-preset big:mac=1e308,ac=1e308`` wrote report.md energy cells 'inf' and 'nan' and null energies in
    analysis.json, exit 0; it is a one-line error, exit 2, and no analysis is written."""
    out = tmp_path / "a"
    assert main(["analyze", str(runs / "stbp"), "--limit", "20", "--bits", "", "--snr", "", "--no-timesteps",
                 "--out", str(out), "--add-preset", "big:mac=1e308,ac=1e308"]) == 2
    err = capsys.readouterr().err
    assert "energy preset 'big' prices an inference beyond the float range (inf pJ)" in err and err.count("\n") == 1
    assert not (out / "analysis.json").exists()


def test_analyze_refuses_a_repeated_sweep_point_in_one_line(runs, tmp_path, capsys):
    """``--bits 4,4,8`` measured 4 bits twice (the same accuracy, a repeated row in report.md and analysis.json),
    exit 0; ``--snr 20,20`` the same (its noise draws are seeded). Refused before the run is read, exit 2."""
    out = tmp_path / "a"
    assert main(["analyze", str(runs / "stbp"), "--bits", "4,4,8", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("deepspike: error: bits sweep point 4 is given twice in (4, 4, 8): give each "
                                       "point once\n")
    assert not out.exists()


def test_analyze_refuses_bits_beyond_64_in_one_line(runs, tmp_path, capsys):
    """``--bits 99999999999999999999`` ran the sweep (at full precision) and died in a TypeError traceback drawing
    bits.png on a log scale (exit 1)."""
    out = tmp_path / "a"
    assert main(["analyze", str(runs / "stbp"), "--limit", "20", "--bits", "8,99999999999999999999", "--snr", "",
                 "--no-timesteps", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad bits sweep point 99999999999999999999: expected whole numbers from 2 to 64" in err
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("run, options, message", [
    ("stbp", ["--jitter", "0.1"], "--jitter reads TTFS spike times, which this net has none of"),
    ("ann", ["--deletion", "0.1"], "--deletion reads rate-coded spikes, which this net has none of"),
    ("ann", ["--raster", "5", "--traces", "2"], "--raster, --traces reads rate-coded spikes"),
])
def test_analyze_refuses_a_sweep_of_a_coding_the_net_lacks(runs, tmp_path, capsys, run, options, message):
    """They were accepted and ignored (found by a sweep of the commands); the defaults still apply where they fit."""
    args = ["analyze", str(runs / run), "--limit", "20", "--bits", "", "--snr", "", "--no-timesteps",
            "--out", str(tmp_path / "a")]
    assert main([*args, *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("options, message", [
    ({"limit": True}, "--limit must be an integer >= 1 (test samples), got True"),  # analysed one sample
    ({"limit": 2.5}, "--limit must be an integer >= 1 (test samples), got 2.5"),  # a TypeError slicing the batches
    ({"limit": 0}, "--limit must be an integer >= 1 (test samples), got 0"),
    ({"noise_repeats": 0}, "noise_repeats must be an integer >= 1 (noise draws per SNR), got 0"),  # ZeroDivisionError
    ({"noise_repeats": 2.5}, "noise_repeats must be an integer >= 1 (noise draws per SNR), got 2.5"),  # TypeError
    # these two were refused only after the accuracy and the activity had been measured
    ({"pe_neurons": 0}, "PE capacities must be integers >= 1, got N=0, W=65536"),
    ({"pe_weights": 2.5}, "PE capacities must be integers >= 1, got N=256, W=2.5"),
    ({"preset": "nope"}, "unknown energy preset 'nope'"),
    # a text is true: per_channel="no" quantized per channel, plots="no" drew the plots
    ({"per_channel": "no"}, "per_channel must be True or False, got 'no'"),
    ({"plots": "no"}, "plots must be True or False, got 'no'"),
    ({"timesteps": 0}, "timesteps must be True or False, got 0"),
])
def test_analysis_counts_of_the_wrong_type_or_size_are_refused_before_loading(tmp_path, options, message):
    """Checked before the run is read (tmp_path holds none)."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        analyze_run(tmp_path, None, AnalysisOptions(**options))


@pytest.mark.parametrize("qat, message", [
    ("8,1", "quantization bits must be an integer >= 2, got 1"),
    ("8,99999999999999999999", "quantization bits must be at most 64 (32 and more: full precision), got "
                               "99999999999999999999"),
    ("8,8", "QAT stages must differ (each writes OUT/qat/bits<k>), got (8, 8)"),
    ("8,4", "qat/bits4 already holds a run; pick another output directory"),
])
def test_analyze_refuses_bad_qat_stages_before_any_work(runs, tmp_path, capsys, qat, message):
    """They were found on reaching the stage, after the whole analysis and the stages before it: --qat 8,1 and
    --qat 8,8 wrote analysis.json and trained and wrote qat/bits8, then exited 2."""
    out = tmp_path / "a"
    (out / "qat" / "bits4").mkdir(parents=True)
    (out / "qat" / "bits4" / "checkpoint.pt").write_bytes(b"a stage trained before")
    args = ["analyze", str(runs / "stbp"), "--limit", "20", "--bits", "", "--snr", "", "--no-timesteps",
            "--out", str(out), "--qat", qat]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in out.rglob("*")) == ["bits4", "checkpoint.pt", "qat"]  # nothing written


def test_analyze_refuses_qat_of_a_converted_run_before_any_work(runs, tmp_path, capsys):
    """It was refused after the whole analysis had been written (analysis.json, report, plots)."""
    converted = tmp_path / "converted"
    convert_run(runs / "ann", converted, norm="max", timesteps=4, calib_samples=16, limit=10, log=lambda s: None)
    out = tmp_path / "a"
    assert main(["analyze", str(converted), "--limit", "10", "--no-timesteps", "--out", str(out), "--qat", "8"]) == 2
    err = capsys.readouterr().err
    assert "a converted run has no trainable SNN" in err and err.count("\n") == 1
    assert not out.exists() or not any(out.rglob("*"))


@pytest.mark.parametrize("stages, epochs, lr", [((8, 1), 1, None), ((4, 4), 1, None), ((8,), 1.5, None),
                                                ((8,), True, None), ((8,), 1, 0.0), ((8,), 1, math.nan)])
def test_qat_arguments_are_checked_before_the_run_is_read(tmp_path, stages, epochs, lr):
    """tmp_path holds no run: each mistake is named before load_run (epochs=1.5 was a TypeError in range())."""
    with pytest.raises(ConfigError, match="bits must be an integer|stages must differ|epochs >= 1|learning rate"):
        quantization_aware_retrain(tmp_path, tmp_path / "qat", stages=stages, epochs=epochs, lr=lr)


@pytest.fixture(scope="module")
def wta_run(tmp_path_factory):
    return trained_wta_run(tmp_path_factory.mktemp("wta") / "run", "train.epochs=1")


def test_analyze_prices_a_net_that_simulates_itself(wta_run, tmp_path):
    """A wta_stdp run (Diehl & Cook): accuracy as deepspike eval scores it, the spikes and synaptic events its layer
    counted, energies from them, and the weight sweeps on its weight buffer (no parameters, no neuron modules)."""
    out = tmp_path / "out"
    assert main(["analyze", str(wta_run), "--out", str(out), "--limit", "60", "--bits", "32,2", "--snr", "10"]) == 0
    a = json.loads((out / "analysis.json").read_text())
    config, parts, batches = load_test_batches(wta_run, 60)
    assert a["accuracy"] == evaluate(parts.model, parts.method, batches)["accuracy"]
    act = a["activity"]
    assert [layer["name"] for layer in act["layers"]] == ["excitatory", "inhibitory"]
    n = config.model.args["neurons"]
    exc, inh = (layer["spikes_per_sample"] for layer in act["layers"])
    assert act["acs_per_sample"] == pytest.approx(act["input_spikes_per_sample"] * n + exc + inh * (n - 1))
    assert a["latency"] == {"kind": "timesteps", "value": act["timesteps"]} and act["timesteps"] >= 200
    # the neurons' own updates: (5, 5) per excitatory and (3, 3) per inhibitory neuron and simulated step
    assert act["update_macs_per_sample"] == act["update_acs_per_sample"] == pytest.approx(8 * n * act["timesteps"])
    assert "neuron state updates per inference: MACs" in (out / "report.md").read_text()
    preset = a["energy_presets"]["45nm_fp32"]
    assert a["energy"]["45nm_fp32"]["snn_pj"] == pytest.approx(act["acs_per_sample"] * preset["ac_pj"]
                                                               + (exc + inh) * preset["spike_pj"])
    bits = {row["bits"]: row["accuracy"] for row in a["sweeps"]["bits"]}
    assert bits[32] == a["accuracy"] and a["accuracy_4bit"] is None
    assert [r["snr_db"] for r in a["sweeps"]["snr"]] == [10]
    assert a["raster"] == [] and a["traces"] == []
    assert [p["name"] for p in a["hardware"]["layers"]] == ["excitatory", "inhibitory"]  # not the vote
    assert (out / "activity.png").exists() and not (out / "spike_times.png").exists()


@pytest.mark.parametrize("flags, message", [(["--deletion", "0.1"], "--deletion reads spikes of neuron modules"),
                                            (["--raster", "4"], "--raster reads spikes of neuron modules"),
                                            (["--qat", "4"], "learns without gradients")])
def test_analyze_refuses_what_a_wta_net_does_not_have(wta_run, tmp_path, capsys, flags, message):
    capsys.readouterr()
    assert main(["analyze", str(wta_run), "--out", str(tmp_path / "out"), "--limit", "20", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out" / "analysis.json").exists()


def test_compare_lists_a_wta_run(wta_run):
    row, = compare_runs([wta_run], limit=20)
    assert row["method"] == "wta_stdp" and re.fullmatch(r"T=\d+(\.\d{1,3})?", row["latency"])  # mean steps, 6 digits
    assert row["synops/inf"] > row["spikes/inf"] > 0 and row["+ updates (nJ)"] > row["energy (nJ)"] > 0


def test_a_ttfs_net_whose_outputs_never_spiked_has_no_latency():
    """A TTFS net has no time steps (T = 0): when no sample's output spiked there is no decision time, and the
    latency read 'timesteps = 0' (compare: 'T=0'). It is None now and the report says why; with one decided sample
    it is that sample's first output spike."""
    inf = float("inf")
    arch = create_architecture("mlp", num_classes=2, input_shape=(4,), hidden=[3])
    for out_times, latency in ((torch.tensor([[inf, inf]]), None),
                               (torch.tensor([[1.5, 0.9]]), {"kind": "decision_time", "value": 0.9})):
        model = nn.Sequential(FakeTTFS(4, torch.tensor([[0.5, inf, 0.7]])), FakeTTFS(3, out_times))
        with NetworkMonitor(model) as mon:
            model(torch.tensor([[0.1, inf, 0.3, inf]]))
        result = {"run": "r", "method": "ttfs", "model": "mlp", "dataset": "d", "samples": 1, "parameters": 0,
                  "accuracy": 0.5, "sweeps": {}, **cost_sections(arch, mon.summary(), AnalysisOptions())}
        assert result["latency"] == (None if latency is None else pytest.approx(latency))
        assert ("- latency: none (no sample had an output spike" in markdown_report(result)) == (latency is None)
        assert comparison_row(result)["latency"] == (None if latency is None else "t=0.9")


def test_the_report_says_how_many_samples_the_decision_time_leaves_out():
    """The TTFS decision time is the mean first output spike of the samples that had one; report.md gave it alone, so
    a net whose outputs were silent on 3 of 4 samples read as deciding at t=0.9. It now says 75.0% had none."""
    inf = float("inf")
    arch = create_architecture("mlp", num_classes=2, input_shape=(4,), hidden=[3])
    hidden = torch.tensor([[0.5, inf, 0.7]] * 4)
    for out_times, note in ((torch.tensor([[1.5, 0.9], [inf, inf], [inf, inf], [inf, inf]]),
                             "- latency: decision_time = 0.9 (over the decided samples; 75.0% had no output spike)"),
                            (torch.tensor([[1.5, 0.9]] * 4), "- latency: decision_time = 0.9\n")):
        model = nn.Sequential(FakeTTFS(4, hidden), FakeTTFS(3, out_times))
        with NetworkMonitor(model) as mon:
            model(torch.tensor([[0.1, inf, 0.3, inf]] * 4))
        result = {"run": "r", "method": "ttfs", "model": "mlp", "dataset": "d", "samples": 4, "parameters": 0,
                  "accuracy": 0.5, "sweeps": {}, **cost_sections(arch, mon.summary(), AnalysisOptions())}
        assert note in markdown_report(result)


def test_the_test_samples_stop_at_the_limit_inside_a_batch(monkeypatch):
    """Batches of 4 samples, limit 7: the first batch whole, 3 of the second, none of the third (7 samples)."""
    data = [(torch.arange(4 * i, 4 * i + 4.0), torch.arange(4 * i, 4 * i + 4)) for i in range(3)]
    monkeypatch.setattr(report_module, "load_run", lambda run_dir: (None, SimpleNamespace(model=None, data=None), None))
    monkeypatch.setattr(report_module, "model_device", lambda model: "cpu")
    monkeypatch.setattr(report_module, "make_batches", lambda config, data_, split, device: data)
    _, _, batches = load_test_batches("run", 7)
    assert [y.tolist() for _, y in batches] == [[0, 1, 2, 3], [4, 5, 6]]


def test_the_trace_table_gives_the_silent_neurons_highest_membrane_over_threshold():
    """Neuron 0 fired (its 0.95 of threshold 1 is left out); the silent ones reach 0.2 and 0.6 (threshold 1) and 0.4 and
    0.1 (threshold 0.5: 0.8 and 0.2): the highest ratio is 0.800 (the membrane alone would give 0.600)."""
    trace = {"layer": "body.1", "neurons": 9, "shown": [0, 4, 8], "fired": [True, False, False],
             "membrane": [[0.95, 0.2, 0.4], [0.0, 0.6, 0.1]], "threshold": [[1.0, 1.0, 0.5], [1.0, 1.0, 0.5]]}
    assert "| body.1 | 3 of 9 | 1 | 0.800 |" in report_module._trace_lines([trace])


def test_sweep_rows_are_reported_in_percent_and_ttfs_times_in_40_bins():
    """A 4-bit row of accuracy 0.75 reads 75.00 (%); TTFS times 0, 1, 1, 4 fall in 40 bins of 0.1: bins 0, 10, 39."""
    arch = create_architecture("mlp", num_classes=2, input_shape=(4,), hidden=[3])
    result = {"run": "r", "method": "ann", "model": "mlp", "dataset": "d", "samples": 4, "parameters": 0,
              "accuracy": 0.5, "sweeps": {"bits": [{"bits": 4, "per_channel": False, "accuracy": 0.75}]},
              **cost_sections(arch, None, AnalysisOptions())}
    assert "| 4 | 75.00 |" in markdown_report(result)
    h = report_module._compact({"name": "l", "coding": "ttfs", "step_counts": [], "times": [0.0, 1.0, 1.0, 4.0]})
    assert len(h["time_edges"]) == 41 and {i: c for i, c in enumerate(h["time_counts"]) if c} == {0: 1, 10: 2, 39: 1}
