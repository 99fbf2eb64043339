"""``deepspike timesteps``: accuracy against inference and training T written as CSV and PNG, bad steps refused."""

import argparse
import csv

import pytest

from deepspike.commands import timesteps
from deepspike.commands.timesteps import parse_steps
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.training.reload import evaluate_run
from deepspike.training.trainer import Trainer


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "stbp_T2"
    config = load_config(None, ["method.name=stbp", "method.timesteps=2", "model.name=scnn_digits",
                                "model.width=0.25", "train.epochs=1", "train.batch_size=128",
                                "train.progress=false"])
    Trainer(config, out).fit()
    return out


def test_timesteps_command_writes_csv_and_plots(tiny_run, tmp_path):
    parser = argparse.ArgumentParser()
    timesteps.add_arguments(parser)
    args = parser.parse_args([str(tiny_run), "--eval-T", "1,2", "--out", str(tmp_path / "sweep")])
    assert timesteps.run(args) == 0
    with open(tmp_path / "sweep" / "accuracy_vs_inference_T.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["train_T"], r["inference_T"]) for r in rows] == [("2", "1"), ("2", "2")]
    with open(tmp_path / "sweep" / "accuracy_vs_training_T.csv") as f:
        (row,) = list(csv.DictReader(f))
    # the run's own eval T must reproduce the trainer's evaluation of the checkpoint
    assert float(row["accuracy"]) == pytest.approx(evaluate_run(tiny_run)["test_accuracy"])
    assert float(rows[1]["accuracy"]) == float(row["accuracy"])
    assert (tmp_path / "sweep" / "accuracy_vs_inference_T.png").stat().st_size > 1000
    assert (tmp_path / "sweep" / "accuracy_vs_training_T.png").stat().st_size > 1000


def test_timesteps_rejects_bad_steps():
    assert parse_steps("1, 4,16") == [1, 4, 16]
    with pytest.raises(ConfigError, match="--eval-T"):
        parse_steps("0,4")
    with pytest.raises(ConfigError, match="--eval-T"):
        parse_steps("a")
    for text in ("1,,2", "1,2,", "2,2", ""):
        with pytest.raises(ConfigError, match="expected distinct comma-separated integers >= 1"):
            parse_steps(text)


@pytest.mark.parametrize("samples", ["0", "-5"])
def test_timesteps_rejects_max_samples_below_one(tiny_run, tmp_path, capsys, samples):
    from deepspike.cli import main

    out = tmp_path / "sweep"
    assert main(["timesteps", str(tiny_run), "--eval-T", "1", "--max-samples", samples, "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"deepspike: error: --max-samples must be >= 1, got {samples}\n"
    assert not out.exists()


@pytest.mark.parametrize("encoder", ["frames", "population"])
def test_default_steps_stop_at_the_frames_a_sample_holds(tmp_path, encoder):
    """Without --eval-T an event-frame run (as they are or population-coded) is swept at 1, 2, 4 and its data's 6
    frames (asking for 8 would fail); an image run at the whole default list."""
    out = tmp_path / "frames_T4"
    Trainer(load_config(None, ["method.name=stbp", "method.timesteps=4", f"method.encoder={encoder}", "model.name=mlp",
                               "model.args.hidden=[16]", "data.name=digits_events", "data.args.timesteps=6",
                               "train.epochs=1", "train.progress=false"]), out).fit()
    parser = argparse.ArgumentParser()
    timesteps.add_arguments(parser)
    assert timesteps.run(parser.parse_args([str(out), "--max-samples", "20", "--out", str(tmp_path / "s")])) == 0
    with open(tmp_path / "s" / "accuracy_vs_inference_T.csv") as f:
        assert [r["inference_T"] for r in csv.DictReader(f)] == ["1", "2", "4", "6"]
    assert parse_steps(None) is None and parser.parse_args(["r", "--out", "o"]).eval_T is None


def test_steps_past_what_the_samples_hold_are_refused_naming_the_run_before_any_is_scored(tmp_path, capsys):
    from deepspike.cli import main

    run = tmp_path / "frames"
    Trainer(load_config(None, ["method.name=stbp", "method.timesteps=4", "method.encoder=frames", "model.name=mlp",
                               "model.args.hidden=[16]", "data.name=digits_events", "data.args.timesteps=6",
                               "train.epochs=1", "train.progress=false"]), run).fit()
    capsys.readouterr()
    assert main(["timesteps", str(run), "--eval-T", "1,2,7", "--out", str(tmp_path / "s")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"deepspike: error: run {run}: --eval-T 7 asks for more steps than its samples hold (6)\n"
    assert captured.out == ""


def test_a_psn_run_is_swept_at_its_own_steps_only(tmp_path, capsys):
    """PSN's [T, T] weights run at their own T only: without --eval-T the default list failed at T = 1 ("the PSN
    neuron needs all its 3 time steps at once, got 1"), exit 2 with nothing written; now its one point is its own T,
    the accuracy ``deepspike eval`` gives, and other steps are refused naming the run."""
    from deepspike.cli import main

    run = tmp_path / "psn"
    Trainer(load_config(None, ["method.name=stbp", "method.timesteps=3", "method.neuron=psn", "method.encoder=direct",
                               "model.name=mlp", "model.args.hidden=[16]", "train.epochs=1",
                               "train.max_steps_per_epoch=2", "train.progress=false"]), run).fit()
    capsys.readouterr()
    assert main(["timesteps", str(run), "--out", str(tmp_path / "s")]) == 0
    with open(tmp_path / "s" / "accuracy_vs_inference_T.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["train_T"], row["inference_T"]) == ("3", "3")
    assert float(row["accuracy"]) == pytest.approx(evaluate_run(run)["test_accuracy"])
    assert main(["timesteps", str(run), "--eval-T", "1,3", "--out", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err == (f"deepspike: error: run {run}: its net (PSN) runs at its own T=3 only, not at "
                                       "--eval-T 1,3; give --eval-T 3 or leave --eval-T out\n")
