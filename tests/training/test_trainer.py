"""The Trainer end to end on digits: outputs, eval reproducibility, and exact resume after a kill."""

import json

import pytest
import torch

import deepspike.training.trainer as trainer_module
import deepspike.training.training_setup as training_setup_module
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.training.reload import evaluate_run
from deepspike.training.runs import load_checkpoint
from deepspike.training.trainer import Trainer
from tiny_run import TINY, StopAfterFirstEpoch, _stop_after_first_epoch


# A stochastic recipe (Poisson input, dropout, augmentation) so resume must restore every RNG.
def test_run_outputs_and_eval(tmp_path):
    cfg = load_config(None, TINY)
    summary = Trainer(cfg, tmp_path / "run").fit()
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "checkpoint.pt", "summary.json"):
        assert (run / name).is_file()
    saved = json.loads((run / "summary.json").read_text())
    assert saved == summary
    assert {"method", "model", "dataset", "test_accuracy", "epochs", "train_seconds"} <= set(saved)
    assert saved["method"] == "stbp" and saved["dataset"] == "digits" and saved["epochs"] == 2
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert lines[-1]["test_accuracy"] == saved["test_accuracy"]
    # eval reloads the checkpoint and reproduces the same accuracy (Poisson input included).
    assert evaluate_run(run)["test_accuracy"] == saved["test_accuracy"]


def test_resume_after_interruption_is_exact(tmp_path):
    cfg = load_config(None, TINY)
    Trainer(cfg, tmp_path / "full").fit()

    with pytest.raises(StopAfterFirstEpoch):
        Trainer(cfg, tmp_path / "cut", callbacks=(_stop_after_first_epoch,)).fit()
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    Trainer(cfg, tmp_path / "cut", resume=True).fit()

    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert full["epoch"] == cut["epoch"] == 2
    for key, value in full["model"].items():
        assert torch.equal(value, cut["model"][key]), key
    drop_times = ("epoch_seconds", "train_seconds")
    full_log = [
        {k: v for k, v in r.items() if k not in drop_times}
        for r in map(json.loads, (tmp_path / "full" / "metrics.jsonl").read_text().splitlines())
    ]
    cut_log = [
        {k: v for k, v in r.items() if k not in drop_times}
        for r in map(json.loads, (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines())
    ]
    assert full_log == cut_log


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = load_config(None, TINY[:-3] + ["train.epochs=1", "train.progress=false"])
    Trainer(cfg, tmp_path / "run").fit()
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run; use --resume"):
        Trainer(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    with pytest.raises(ConfigError, match="does not exist"):
        Trainer(cfg, tmp_path / "other", resume=True)


def test_max_steps_per_epoch_stops_early(tmp_path, monkeypatch):
    steps = []

    class CountingSGD(torch.optim.SGD):
        def step(self, closure=None):
            steps.append(1)
            return super().step(closure)

    monkeypatch.setattr(training_setup_module, "make_optimizer", lambda cfg, params: CountingSGD(params, lr=0.01))
    cfg = load_config(
        None,
        [
            "method.name=ann",
            "model.name=mlp",
            "model.args.hidden=[8]",
            "train.epochs=2",
            "train.batch_size=16",
            "train.max_steps_per_epoch=3",
            "train.progress=false",
        ],
    )
    Trainer(cfg, tmp_path / "run").fit()
    assert len(steps) == 6  # 2 epochs x 3 steps, although an epoch of digits has 90 batches of 16


def test_method_hooks_are_called(tmp_path, monkeypatch):
    from deepspike.methods.ann import AnnMethod

    calls = {"penalty": 0, "after_backward": 0}

    def penalty(self, model):
        calls["penalty"] += 1
        return 100.0 * sum(p.square().sum() for p in model.parameters())  # dominates the loss

    def after_backward(self, model):
        assert all(p.grad is not None for p in model.parameters())  # called between backward and step
        calls["after_backward"] += 1

    monkeypatch.setattr(AnnMethod, "penalty", penalty)
    monkeypatch.setattr(AnnMethod, "after_backward", after_backward)
    monkeypatch.setattr(AnnMethod, "epoch_measures", lambda self, model, batches: {"my_measure": 0.25})
    cfg = load_config(
        None,
        [
            "method.name=ann",
            "model.name=mlp",
            "model.args.hidden=[8]",
            "train.epochs=1",
            "train.batch_size=64",
            "train.max_steps_per_epoch=4",
            "train.progress=false",
        ],
    )
    summary = Trainer(cfg, tmp_path / "run").fit()
    assert calls == {"penalty": 4, "after_backward": 4}
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["my_measure"] == 0.25 and summary["my_measure"] == 0.25
    # 100 x the squared weights of a default-initialised 64-8-10 net is several hundred; CE alone is ~2.3
    assert record["train_loss"] > 50.0


def test_fit_leaves_the_process_group_once(tmp_path, monkeypatch):
    left = []  # (context, whether summary.json was written by then)
    summary_written = lambda: (tmp_path / "run" / "summary.json").is_file()  # noqa: E731
    monkeypatch.setattr(trainer_module, "shutdown", lambda ctx: left.append((ctx, summary_written())))
    cfg = load_config(None, ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "train.epochs=1",
                             "train.max_steps_per_epoch=1", "train.progress=false"])
    trainer = Trainer(cfg, tmp_path / "run")
    assert left == []
    trainer.fit()
    assert left == [(trainer.dist, True)]
