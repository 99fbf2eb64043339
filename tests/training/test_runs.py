"""Run directories: atomic writes, checkpoints, the metrics log, config and summary files, strict JSON."""

import json
import math

import pytest
import torch

from deepspike.config import load_config
from deepspike.core.atomic import atomic_write, atomic_write_text
from deepspike.core.errors import DataCorruptError, DataNotFoundError
from deepspike.training.checkpoint import rng_state, set_rng_state
from deepspike.training.reload import load_run
from deepspike.training.runs import MetricsLog, RunDir, load_checkpoint, save_checkpoint, strict_json


def _strict_loads(text):
    """json.loads that refuses the NaN/Infinity tokens Python's json writes by default."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    class Boom(Exception):
        pass

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


def test_run_dir_round_trip(tmp_path):
    run = RunDir(tmp_path / "run")
    assert not run.is_run_dir() and not run.has_checkpoint()
    config = load_config(None, ["method.name=ann", "train.epochs=3", "optim.lr=0.01"])
    run.create()
    run.write_config(config)
    run.metrics.append({"epoch": 1, "test_accuracy": 0.5})
    run.write_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 1})
    run.write_summary({"method": "ann", "test_accuracy": 0.5, "sizes": [1, 2]})

    assert sorted(p.name for p in run.path.iterdir()) == [
        "checkpoint.pt", "config.yaml", "metrics.jsonl", "summary.json"]
    assert run.is_run_dir() and run.has_checkpoint()
    assert RunDir(str(run.path)).read_config() == config
    assert run.metrics.read() == [{"epoch": 1, "test_accuracy": 0.5}]
    assert torch.equal(run.read_checkpoint()["model"]["w"], torch.ones(2))
    assert run.read_summary() == {"method": "ann", "test_accuracy": 0.5, "sizes": [1, 2]}
    assert run.summary_path.read_text().endswith("}\n")  # indented JSON, one final newline


def test_summary_and_metrics_are_strict_json(tmp_path):
    run = RunDir(tmp_path)
    summary = {"a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.5, "nested": {"x": [math.nan, 2.0]}, "n": None}
    run.write_summary(summary)
    run.metrics.append({"epoch": 1, "loss": math.nan})
    text = run.summary_path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert _strict_loads(text) == {"a": None, "b": None, "c": None, "d": 1.5, "nested": {"x": [None, 2.0]}, "n": None}
    assert _strict_loads(run.metrics.path.read_text()) == {"epoch": 1, "loss": None}
    assert strict_json({"x": math.nan, "y": (1.0, math.inf)}) == '{"x": null, "y": [1.0, null]}'
    assert summary["a"] != summary["a"]  # the caller's dict is left as it was


def test_not_a_run_directory(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"")  # a checkpoint alone does not make a run directory
    with pytest.raises(DataNotFoundError, match=r"is not a run directory \(no config.yaml\)"):
        RunDir(tmp_path).require()
    with pytest.raises(DataNotFoundError, match="is not a run directory"):
        RunDir(tmp_path).read_config()
    with pytest.raises(DataNotFoundError, match="is not a run directory"):
        load_run(tmp_path)
    with pytest.raises(DataNotFoundError, match="no summary at"):
        RunDir(tmp_path).read_summary()
