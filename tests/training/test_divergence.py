"""A diverged run stops (issue 19, item 3): one line naming epoch and step, exit 2, the last good checkpoint
kept, no metrics line for the bad epoch and no summary claiming an accuracy."""

import math

import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import UserError
from deepspike.methods.ann import AnnMethod
from deepspike.training.runs import RunDir
from deepspike.training.trainer import Trainer

QUICK = ["method.name=ann", "model.name=mlp", "model.args.hidden=[16]", "train.batch_size=64",
         "train.max_steps_per_epoch=3", "train.progress=false"]


def test_huge_learning_rate_stops_with_one_line_and_no_summary(tmp_path, capsys):
    """The issue's reproduction, on a tiny digits MLP: SGD with lr 1e20 overflows in the second step."""
    run = tmp_path / "R"
    assert main(["train", *QUICK, "train.epochs=2", "optim.name=sgd", "optim.lr=1e20", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("deepspike: error: training diverged at epoch 1, step 2: the loss is ")
    assert not (run / "summary.json").exists() and not (run / "checkpoint.pt").exists()
    assert RunDir(run).metrics.read() == []


def test_nan_loss_in_a_later_epoch_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    checkpoints = []
    real_loss = AnnMethod.loss
    calls = []

    def loss(self, out, y):
        value = real_loss(self, out, y)
        if not torch.is_grad_enabled():  # evaluation
            return value
        calls.append(1)
        return value * math.nan if len(calls) == 3 + 2 else value  # epoch 2, step 2 (3 steps per epoch)

    monkeypatch.setattr(AnnMethod, "loss", loss)
    keep = lambda trainer, record: checkpoints.append(trainer.run.checkpoint_path.read_bytes())  # noqa: E731
    trainer = Trainer(load_config(None, QUICK + ["train.epochs=3"]), tmp_path / "run", callbacks=(keep,))
    with pytest.raises(UserError, match=r"^training diverged at epoch 2, step 2: the loss is nan; "):
        trainer.fit()
    run = RunDir(tmp_path / "run")
    assert len(checkpoints) == 1 and run.checkpoint_path.read_bytes() == checkpoints[0]  # epoch 1's, untouched
    assert [r["epoch"] for r in run.metrics.read()] == [1]
    assert not run.summary_path.exists()


def test_non_finite_weights_after_an_epoch_stop_before_it_is_logged(tmp_path, monkeypatch):
    """Every loss finite, but the last step leaves a NaN weight: caught once per epoch, before logging."""
    real_after_backward = AnnMethod.after_backward
    steps = []

    def after_backward(self, model):
        real_after_backward(self, model)
        steps.append(1)
        if len(steps) == 3:  # the last step of epoch 1
            with torch.no_grad():
                next(model.parameters())[0, 0] = math.inf

    monkeypatch.setattr(AnnMethod, "after_backward", after_backward)
    trainer = Trainer(load_config(None, QUICK + ["train.epochs=2"]), tmp_path / "run")
    with pytest.raises(UserError, match=r"^training diverged in epoch 1: \S+ holds inf or nan; "):
        trainer.fit()
    run = RunDir(tmp_path / "run")
    assert run.metrics.read() == [] and not run.has_checkpoint() and not run.summary_path.exists()


def test_a_finished_run_trained_on_loses_its_old_summary_when_it_diverges(tmp_path, monkeypatch):
    """A summary describes a finished run: continuing one removes it until the run ends again."""
    cfg = load_config(None, QUICK + ["train.epochs=1"])
    Trainer(cfg, tmp_path / "run").fit()
    assert RunDir(tmp_path / "run").summary_path.exists()
    monkeypatch.setattr(AnnMethod, "loss", lambda self, out, y: out.sum() * math.nan)
    with pytest.raises(UserError, match="training diverged at epoch 2, step 1"):
        Trainer(load_config(None, QUICK + ["train.epochs=2"]), tmp_path / "run", resume=True).fit()
    assert not RunDir(tmp_path / "run").summary_path.exists()
    assert [r["epoch"] for r in RunDir(tmp_path / "run").metrics.read()] == [1]
