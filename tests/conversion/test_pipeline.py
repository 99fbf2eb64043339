"""End to end: train a tiny ResNet-20-style ANN on digits, convert it (SPIKE-NORM, max-norm), reload it."""

import csv
import json

import numpy as np
import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.conversion import pipeline
from deepspike.conversion.accuracy_sweep import checkpoints_for
from deepspike.conversion.pipeline import convert_run
from deepspike.core.errors import ConfigError
from deepspike.training.reload import evaluate_run, load_run
from deepspike.training.runs import RunDir
from deepspike.training.trainer import Trainer
from fakedata import write_image_tree


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ann")
    config = load_config(
        None,
        [
            "method.name=ann",
            "method.init=sengupta",
            "model.name=sengupta_resnet20",
            "model.width=0.5",
            "model.args.blocks=[1,1,1]",
            "model.args.dropout=0.0",
            "data.name=digits",
            "data.normalize=true",
            "optim.name=adam",
            "optim.lr=0.005",
            "train.epochs=3",
            "train.batch_size=32",
            "train.progress=false",
        ],
    )
    summary = Trainer(config, out).fit()
    assert summary["test_accuracy"] > 0.85  # a working ANN to convert
    return out, summary["test_accuracy"]


def test_resnet_converts_with_spike_norm_and_reloads(ann_run, tmp_path):
    run_dir, ann_accuracy = ann_run
    out = tmp_path / "snn"
    summary = convert_run(
        run_dir,
        out,
        norm="spike",
        timesteps=100,
        calib_samples=32,
        calib_timesteps=100,
        limit=100,
        log=lambda s: None,
    )
    assert summary["ann_test_accuracy"] == pytest.approx(ann_accuracy, abs=0.1)  # first 100 test images only
    # The converted net classifies like its ANN at T = 100 (tiny net, unity residual thresholds).
    assert summary["snn_test_accuracy"] >= summary["ann_test_accuracy"] - 0.1
    thresholds = json.loads((out / "thresholds.json").read_text())["layers"]
    assert [t["role"] for t in thresholds] == ["plain", "plain", "stem"] + ["residual", "junction"] * 3 + [
        "output"
    ]
    assert all(t["threshold"] == 1.0 for t in thresholds if t["role"] in ("stem", "residual", "junction"))
    assert thresholds[0]["threshold"] != 1.0
    with open(out / "accuracy_vs_timesteps.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["timesteps"]) for r in rows] == checkpoints_for(100)
    assert float(rows[-1]["accuracy"]) == pytest.approx(summary["snn_test_accuracy"], abs=1e-6)
    assert float(rows[0]["accuracy"]) < summary["snn_test_accuracy"]  # one step is not enough
    for name in ("accuracy_vs_timesteps.png", "spike_counts.csv", "spike_counts.png", "operations.json"):
        assert (out / name).is_file()
    ops = json.loads((out / "operations.json").read_text())
    assert ops["ratio"] == pytest.approx(ops["snn_accumulates_per_sample"] / ops["ann_macs_per_sample"])
    # `deepspike eval` on the converted directory: the same T, the same seed, the same batches -> same number
    config = load_config(out / "config.yaml")
    assert config.method.name == "converted" and config.method.options.timesteps == 100
    assert config.method.options.thresholds == pytest.approx(summary["thresholds"])
    small = tmp_path / "small"  # `deepspike eval` covers the whole test split: convert without --limit
    convert_run(run_dir, small, norm="max", timesteps=8, calib_samples=64, limit=None, log=lambda s: None)
    reloaded = evaluate_run(small)
    reported = json.loads((small / "summary.json").read_text())
    assert reloaded["test_accuracy"] == pytest.approx(reported["snn_test_accuracy"])


def test_convert_refuses_bad_input(ann_run, tmp_path):
    run_dir, _ = ann_run
    with pytest.raises(ConfigError, match="unknown norm 'l2'; valid: spike, max, percentile"):
        convert_run(run_dir, tmp_path / "x", norm="l2")
    out = tmp_path / "once"
    convert_run(run_dir, out, norm="percentile", timesteps=5, calib_samples=16, limit=10, log=lambda s: None)
    with pytest.raises(ConfigError, match="already holds a run"):
        convert_run(run_dir, out, norm="max", timesteps=5, limit=10, log=lambda s: None)
    with pytest.raises(ConfigError, match="convert needs a trained 'ann' run"):
        convert_run(out, tmp_path / "again", norm="max", timesteps=5, log=lambda s: None)


def test_a_conversion_killed_on_the_way_leaves_no_run_and_can_be_run_again(ann_run, tmp_path, monkeypatch):
    """The checkpoint was written first: a conversion killed during its accuracy sweep left a model without a
    summary, which eval took for a converted run and a second convert into the same --out refused."""
    run_dir, _ = ann_run
    out = tmp_path / "killed"

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(pipeline, "plot_sweep", die)  # the last step before the run's own files
    with pytest.raises(Killed):
        convert_run(run_dir, out, norm="max", timesteps=5, calib_samples=16, limit=10, log=lambda s: None)
    assert not RunDir(out).is_run_dir() and not RunDir(out).has_checkpoint()
    monkeypatch.undo()
    summary = convert_run(run_dir, out, norm="max", timesteps=5, calib_samples=16, limit=10, log=lambda s: None)
    assert RunDir(out).read_summary() == summary


def test_convert_refuses_an_out_that_cannot_be_a_folder(ann_run, tmp_path):
    """issue 19, item 12 for convert: --out an existing file, or a path under a file, is one line; nothing written."""
    run_dir, _ = ann_run
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    for out in (a_file, a_file / "sub"):
        with pytest.raises(ConfigError, match="--out"):
            convert_run(run_dir, out, norm="max", timesteps=5, limit=10, log=lambda s: None)
    assert a_file.read_text() == "keep"


def test_a_bf16_ann_converts_and_every_command_scores_both_nets_alike(tmp_path, monkeypatch):
    """The ANN is scored under the autocast it trained with (convert's ANN accuracy is its summary's); the
    converted net is simulated in float32 and its run says so (train.precision fp32), so eval scores it as
    convert did."""
    precisions = []
    original = pipeline.evaluate
    monkeypatch.setattr(pipeline, "evaluate",
                        lambda *a, **k: precisions.append(k.get("precision")) or original(*a, **k))
    ann = tmp_path / "ann"
    summary = Trainer(load_config(None, ["method.name=ann", "model.name=mlp", "model.args.hidden=[32]",
                                         "data.name=digits", "train.epochs=1", "train.progress=false",
                                         "train.precision=bf16", "optim.lr=0.01"]), ann).fit()
    converted = convert_run(ann, tmp_path / "snn", norm="max", timesteps=8, calib_samples=32, log=lambda s: None)
    assert converted["ann_test_accuracy"] == summary["test_accuracy"] and precisions == [torch.bfloat16]
    assert load_config(tmp_path / "snn" / "config.yaml").train.precision == "fp32"
    assert evaluate_run(tmp_path / "snn")["test_accuracy"] == converted["snn_test_accuracy"]


@pytest.mark.parametrize("norm", ["spike", "max", "percentile", "qcfs"])
def test_unit_spikes_are_refused_for_an_ann_with_biases(norm):
    """0/1 spikes rescale a layer's input by 1 / lambda of the layer before it but not its bias. Measured on a 2-3-2
    net with biases, max-norm, reset by subtraction, T = 4000: 0/1 spikes scored the second image [1.00, 1.00] for
    the ANN's [0.65, 0.95] / lambda_out (prediction lost), threshold-valued spikes [1.99, 2.88] for [1.98, 2.89]."""
    with pytest.raises(ConfigError, match=r"biases .*--spike-value threshold"):
        pipeline.conversion_settings(norm, 8, True, {"spike_value": "one"})
    assert pipeline.conversion_settings(norm, 8, False, {"spike_value": "one"})["spike_value"] == "one"
    assert pipeline.conversion_settings(norm, 8, True, {"spike_value": None})["spike_value"] == "threshold"


def test_cli_refuses_unit_spikes_for_a_batch_norm_ann_in_one_line(tmp_path, capsys):
    run = tmp_path / "bn"
    Trainer(load_config(None, ["method.name=ann", "model.name=vgg", "model.args.blocks=[[4]]", "model.args.hidden=[]",
                               "data.name=digits", "train.epochs=1", "train.max_steps_per_epoch=1",
                               "train.progress=false"]), run).fit()
    capsys.readouterr()  # the training's lines
    out = tmp_path / "snn"
    args = ["convert", str(run), "--norm", "max", "--timesteps", "4", "--limit", "5", "--quiet", "--out", str(out)]
    assert main([*args, "--spike-value", "one"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()
    assert main(args) == 0


@pytest.mark.parametrize(("option", "message"), [
    ({"percentile": "abc"}, r"bad value 'abc' for method.percentile"),  # was a TypeError traceback
    ({"signed": "no", "reset": "subtract"}, r"bad value 'no' for method.signed"),  # was taken as signed=True
    ({"initial_membrane": "half"}, r"bad value 'half' for method.initial_membrane"),  # was a TypeError traceback
])
def test_convert_checks_the_types_of_its_neuron_options(ann_run, tmp_path, option, message):
    run_dir, _ = ann_run
    with pytest.raises(ConfigError, match=message):
        convert_run(run_dir, tmp_path / "snn", norm="max", timesteps=4, limit=5, log=lambda s: None, **option)
    with pytest.raises(ConfigError, match=message):
        pipeline.check_conversion(run_dir, tmp_path / "snn", "max", 4, **option)
    assert not (tmp_path / "snn").exists()


def test_a_run_records_the_calibration_images_it_used_not_the_ones_asked_for(ann_run, tmp_path):
    """Asked for more calibration images than the training split holds, the conversion uses them all; config.yaml
    recorded the number asked for (1,000,000) beside a summary that gave the number used."""
    run_dir, _ = ann_run
    out = tmp_path / "snn"
    summary = convert_run(run_dir, out, norm="max", timesteps=2, calib_samples=10**6, limit=5, log=lambda s: None)
    train_images = len(load_run(run_dir, device="cpu")[1].data.train)
    assert summary["calib_samples"] == train_images < 10**6
    assert load_config(out / "config.yaml").method.options.calib_samples == train_images


@pytest.mark.parametrize("norm", ["spike", "max", "percentile", "channel", "qcfs"])
def test_threshold_valued_spikes_record_the_residual_rule_they_follow(norm):
    """Spikes that carry their threshold balance every layer (``balance_thresholds``), whatever ``residual`` says;
    before, summary.json, thresholds.json and config.yaml recorded the asked-for ``unity`` beside residual-stage
    thresholds of 3.7, 5.2, 4.6, 12.0 (a BN ResNet, max norm), where unity means 1."""
    settings = pipeline.conversion_settings(norm, 8, True, {"residual": "unity", "spike_value": None})
    assert (settings["spike_value"], settings["residual"]) == ("threshold", "balanced")
    if norm != "channel":  # which needs threshold-valued spikes
        unit_spikes = pipeline.conversion_settings(norm, 8, False, {"residual": "unity", "spike_value": "one"})
        assert unit_spikes["residual"] == "unity"


def test_a_resnet_with_threshold_valued_spikes_balances_and_records_its_residual_stage(ann_run, tmp_path):
    run_dir, _ = ann_run
    out = tmp_path / "snn"
    summary = convert_run(run_dir, out, norm="channel", timesteps=2, calib_samples=16, limit=5, log=lambda s: None)
    record = json.loads((out / "thresholds.json").read_text())
    assert summary["residual"] == record["residual"] == load_config(out / "config.yaml").method.options.residual
    assert summary["residual"] == "balanced"
    stage = [layer["threshold"] for layer in record["layers"] if layer["role"] in ("stem", "residual", "junction")]
    assert stage and all(t != [1.0] * len(t) for t in stage)  # balanced per channel, not the unity rule's 1


def test_an_empty_out_is_refused_not_read_as_the_current_folder(ann_run, tmp_path, monkeypatch, capsys):
    """``Path("")`` is ``.``: ``convert RUN --out ''`` (an unset shell variable) converted into the current folder and
    replaced the recipe config.yaml there with the converted run's."""
    run_dir, _ = ann_run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("# my recipe\n")
    with pytest.raises(ConfigError, match="^--out is empty; give the name of a folder$"):
        convert_run(run_dir, "", norm="max", timesteps=2, calib_samples=16, limit=5, log=lambda s: None)
    assert main(["convert", str(run_dir), "--out", "", "--norm", "max", "--timesteps", "2", "--limit", "5"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
    assert (tmp_path / "config.yaml").read_text() == "# my recipe\n"


@pytest.mark.parametrize("files", [["config.yaml"], ["summary.json"], ["config.yaml", "metrics.jsonl"]])
def test_an_out_that_holds_a_runs_files_is_refused_and_keeps_them(ann_run, tmp_path, capsys, files):
    """Only a checkpoint.pt was refused: a folder with a recipe config.yaml, a summary.json or a training that has not
    checkpointed yet (config.yaml, metrics.jsonl) had them replaced by the converted run's (``train --out`` refuses
    such a folder)."""
    run_dir, _ = ann_run
    out = tmp_path / "out"
    out.mkdir()
    for name in files:
        (out / name).write_text(f"# {name}\n")
    message = rf"^\S+out holds {', '.join(files)}, which the converted run would overwrite"
    with pytest.raises(ConfigError, match=message):
        convert_run(run_dir, out, norm="max", timesteps=2, calib_samples=16, limit=5, log=lambda s: None)
    assert main(["convert", str(run_dir), "--out", str(out), "--to", "ttfs", "--limit", "5", "--quiet"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    assert all((out / name).read_text() == f"# {name}\n" for name in files)


@pytest.mark.parametrize("to", ["rate", "ttfs"])
def test_an_ann_without_test_images_is_refused_in_one_line_and_nothing_is_written(tmp_path, capsys, to):
    """A run trained with data.args.test_fraction=0 converted to a rate net reporting 0.0 SNN accuracy and 0.0
    SNN / ANN energy on 0 test images (ANN accuracy null); to a TTFS net it ended in a ZeroDivisionError."""
    write_image_tree(tmp_path / "imgs", ["a", "b"], 6, (8, 8), np.random.default_rng(0), ".png")
    config = load_config(None, ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "data.name=imagefolder",
                                f"data.data_dir={tmp_path / 'imgs'}", "data.args.size=8", "data.args.grayscale=true",
                                "data.args.test_fraction=0", "train.epochs=1", "train.progress=false"])
    Trainer(config, tmp_path / "ann").fit()
    capsys.readouterr()
    out = tmp_path / "snn"
    options = ["--timesteps", "4"] if to == "rate" else []
    assert main(["convert", str(tmp_path / "ann"), "--to", to, "--out", str(out), "--quiet", *options]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no test images" in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("norm", "signed", "message"), [
    ("channel", None, r"^--norm channel converts with signed neurons, which need reset by subtraction; "
                      r"with --reset zero add --no-signed$"),
    ("max", True, r"^--signed needs reset by subtraction \(--reset subtract\), got --reset zero$"),
])
def test_signed_neurons_with_reset_to_zero_are_refused_in_the_cli_words(norm, signed, message):
    """``convert --norm channel --reset zero`` (signed neurons are channel's default) was refused with "method.signed
    needs method.reset=subtract", naming an option the command never took."""
    chosen = {**dict.fromkeys(pipeline.CHOSEN_KEYS), "reset": "zero", "signed": signed}
    with pytest.raises(ConfigError, match=message):
        pipeline.conversion_settings(norm, 8, False, chosen)
    assert pipeline.conversion_settings(norm, 8, False, {**chosen, "signed": False})["reset"] == "zero"
