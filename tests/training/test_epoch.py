"""The console line of a finished epoch; the learning rate an epoch's record logs; each rank's scoring stream."""

import json
import math
import time

import pytest
import torch

from deepspike.config import load_config
from deepspike.methods.stbp import StbpMethod
from deepspike.training import training_setup
from deepspike.training.distributed import DistContext
from deepspike.training.epoch import epoch_line, run_epoch
from deepspike.training.evaluate import EVAL_SEED
from deepspike.training.progress import TrainingProgress
from deepspike.training.trainer import Trainer
from deepspike.training.training_setup import build_training
from tiny_run import TINY
from torchrun import one_and_two_processes


def test_epoch_line_format():
    record = {
        "epoch": 3,
        "train_loss": 0.41234,
        "train_accuracy": 0.85712,
        "test_accuracy": 0.86281,
        "epoch_seconds": 41.23,
        "val_accuracy": None,
    }
    assert epoch_line(record, 10) == "epoch 3/10  train_loss 0.4123  train_acc 0.8571  test_acc 0.8628  (41.2 s)"
    record["val_accuracy"] = 0.9
    assert "  val_acc 0.9000  test_acc" in epoch_line(record, 10)


def _logged_lrs(tmp_path, *overrides):
    cfg = load_config(None, [*TINY, "train.epochs=3", "train.max_steps_per_epoch=2", "optim.lr=1", *overrides])
    Trainer(cfg, tmp_path).fit()
    return [json.loads(line)["lr"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]


def test_an_epochs_logged_lr_is_the_one_its_last_step_took_not_the_next_epochs(tmp_path):
    """Step schedule, gamma 0.1 every epoch: epoch 1 trains at lr 1 throughout (the log said 0.1, epoch 2's)."""
    assert _logged_lrs(tmp_path / "step", "schedule.name=step", "schedule.step_size=1",
                       "schedule.gamma=0.1") == pytest.approx([1.0, 0.1, 0.01])
    # cosine over 3 epochs of 2 steps, 1 epoch of warm-up: the last step of epoch k is at e = k - 1/2, where the
    # warm-up factor (e + 1/2) / 1 has reached 1, so the factor is (1 + cos(pi e / 3)) / 2 (the log ended at 0)
    by_hand = [(1 + math.cos(math.pi * e / 3)) / 2 for e in (0.5, 1.5, 2.5)]
    assert by_hand == pytest.approx([0.9330127, 0.5, 0.0669873])
    logged = _logged_lrs(tmp_path / "cosine", "schedule.name=cosine", "schedule.warmup_epochs=1")
    assert logged == pytest.approx(by_hand)


def test_epoch_seconds_count_the_methods_epoch_measures(tmp_path, monkeypatch):
    """The docstring's "training and evaluation": a method's measures of the epoch (TTFS's spike-time statistics,
    ...) ran after the clock was read, so their time was missing from epoch_seconds."""
    def slow_measures(self, model, batches):
        time.sleep(0.5)
        return {}

    monkeypatch.setattr(StbpMethod, "epoch_measures", slow_measures)
    cfg = load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=1"])
    Trainer(cfg, tmp_path).fit()
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert record["epoch_seconds"] >= 0.5
def _scoring_streams(ctx, monkeypatch):
    """The CPU generator's state at the start of every scoring forward pass of one epoch of ``TINY`` (Poisson input)
    on rank ``ctx.rank`` of ``ctx.world_size`` (no process group: the wrapper and the sums over ranks left out)."""
    monkeypatch.setattr(training_setup, "wrap_data_parallel", lambda model, ctx, device: model)
    config = load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=1", "data.val_fraction=0"])
    setup = build_training(config, ctx, torch.device("cpu"), resume=False)
    setup.reduce = lambda values: values
    states = []
    setup.scorer.register_forward_pre_hook(lambda m, args: None if m.training else states.append(torch.get_rng_state()))
    run_epoch(setup, config, ctx, 0, TrainingProgress())
    return states


def test_each_rank_scores_on_its_own_random_stream(monkeypatch):
    """Every rank seeded its scoring with EVAL_SEED, so rank 1 drew exactly rank 0's Poisson spikes for other samples
    (the same generator state before each test batch). Rank r now draws from EVAL_SEED + r; one process (rank 0)
    draws what `deepspike eval` draws, as before."""
    rank0, rank1 = (_scoring_streams(DistContext(rank, 2, rank), monkeypatch) for rank in (0, 1))
    assert len(rank0) == len(rank1) >= 1
    assert torch.equal(rank0[0], torch.manual_seed(EVAL_SEED).get_state())
    assert torch.equal(rank1[0], torch.manual_seed(EVAL_SEED + 1).get_state())
    assert not any(torch.equal(a, b) for a, b in zip(rank0, rank1, strict=True))


@pytest.mark.slow  # torchrun processes: CI's 15 minutes (run with -m slow)
@pytest.mark.timeout(300)
def test_two_processes_log_the_measures_of_the_whole_test_split(tmp_path):
    """The method's measures were taken on rank 0's part of the test split only: a 2-rank ttfs_window run logged
    dead_fraction 0.090 and an output spiking fraction 0.291 where one process logged 0.074 and 0.283. Now every rank
    measures the whole split, and two processes log one process's measures."""
    recipe = ["method.name=ttfs_window", "model.name=scnn_digits", "data.name=digits", "data.val_fraction=0.9",
              "train.epochs=1", "train.batch_size=48", "train.progress=false"]
    one_and_two_processes(recipe, tmp_path, timeout=240)
    one, two = (json.loads((tmp_path / run / "summary.json").read_text()) for run in ("one", "two"))
    measured = ("dead_fraction", "spiking_fraction/output", "latency", "synaptic_ops", "input_spikes")
    assert all(key in one for key in measured)
    assert {k: one[k] for k in measured} == pytest.approx({k: two[k] for k in measured}, rel=1e-6, abs=1e-9)
