"""Schedules, atomic writes, checkpoints and the metrics log."""

import math

import pytest
import torch

from deepspike.config import ScheduleConfig
from deepspike.core.atomic import atomic_write_text
from deepspike.core.errors import DataCorruptError, DataNotFoundError
from deepspike.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from deepspike.training.metrics import MetricsLog
from deepspike.training.optim import schedule_factor


def test_schedule_factors_by_hand():
    step = ScheduleConfig(name="step", step_size=2, gamma=0.5)
    assert [schedule_factor(step, e, 10, 1) for e in (0, 1.9, 2, 4.5)] == [1, 1, 0.5, 0.25]
    multi = ScheduleConfig(name="multistep", milestones=[3, 1], gamma=0.1)
    assert schedule_factor(multi, 0.5, 10, 1) == 1
    assert schedule_factor(multi, 1, 10, 1) == pytest.approx(0.1)
    assert schedule_factor(multi, 3, 10, 1) == pytest.approx(0.01)
    cos = ScheduleConfig(name="cosine", min_factor=0.2)
    assert schedule_factor(cos, 0, 10, 1) == pytest.approx(1)
    assert schedule_factor(cos, 5, 10, 1) == pytest.approx(0.2 + 0.8 * 0.5)  # cos(pi/2) = 0
    assert schedule_factor(cos, 10, 10, 1) == pytest.approx(0.2)
    lin = ScheduleConfig(name="linear")
    assert schedule_factor(lin, 2.5, 10, 1) == pytest.approx(0.75)
    warm = ScheduleConfig(name="none", warmup_epochs=2)
    # 4 steps per epoch: step 0 is epoch 0 -> (0 + 1/4) / 2
    assert schedule_factor(warm, 0, 10, 4) == pytest.approx(0.125)
    assert schedule_factor(warm, 3, 10, 4) == 1


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    class Boom(Exception):
        pass

    from deepspike.core.atomic import atomic_write

    def write(f):
        f.write(b"partial")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(path, write)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


def test_checkpoint_round_trip_and_rng(tmp_path):
    torch.manual_seed(3)
    state = rng_state()
    expected = torch.rand(5)
    save_checkpoint(tmp_path / "c.pt", {"w": torch.arange(3.0), "rng": state, "epoch": 2})
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["epoch"] == 2 and torch.equal(loaded["w"], torch.arange(3.0))
    torch.rand(7)  # move the generator on
    set_rng_state(loaded["rng"])
    assert torch.equal(torch.rand(5), expected)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataCorruptError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_metrics_log_truncates_unfinished_epochs(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    for e in (1, 2, 3):
        log.append({"epoch": e, "loss": 1.0 / e, "bad": math.inf})
    log.truncate_after(2)
    records = log.read()
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[0]["bad"] is None
