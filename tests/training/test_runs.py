"""Run directories: atomic writes, checkpoints, the metrics log, config and summary files, strict JSON."""

import errno
import json
import math
import os

import numpy as np
import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.atomic import atomic_write, atomic_write_text, check_output_dir, check_output_file
from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError, WriteError
from deepspike.training.random_streams import rng_state, set_rng_state
from deepspike.training.reload import load_run
from deepspike.training.runs import (
    MetricsLog,
    RunDir,
    check_not_run_file,
    load_checkpoint,
    save_checkpoint,
    strict_json,
)
from deepspike.training.trainer import Trainer
from tiny_run import StopAfterFirstEpoch, _stop_after_first_epoch


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


def test_a_cut_off_last_metrics_line_is_dropped(tmp_path):
    """issue 19, item 6: a write killed mid-line (older versions appended in place) leaves a torn last line."""
    log = MetricsLog(tmp_path / "m.jsonl")
    log.path.write_text('{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "lo')
    assert log.read() == [{"epoch": 1, "loss": 0.5}]
    log.append({"epoch": 2, "loss": 0.25})  # the torn line is replaced, not continued
    assert log.path.read_text() == '{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "loss": 0.25}\n'
    log.path.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')  # damage elsewhere is not hidden
    with pytest.raises(DataCorruptError, match=r"m.jsonl, line 2: not a JSON record"):
        log.read()


@pytest.mark.parametrize("content, message", [
    (b'{"epoch": 1}\n\xff\xfe\n', "not UTF-8 text"),
    (b'{"epoch": 1}\n[1, 2]\n', r"line 2: not an epoch record \(a JSON list"),
    (b'{"epoch": "one"}\n', r"line 1: not an epoch record \(epoch 'one'"),
    (b'{"epoch": 0}\n', r"line 1: not an epoch record \(epoch 0"),
    (b'{"epoch": true}\n', r"line 1: not an epoch record \(epoch True"),
    (b'{"epoch": 1, "loss": NaN}\n', "line 1: NaN is not in a metrics record"),
    (b'{"epoch": NaN}\n{"epoch": 2}\n', "line 1: NaN is not in a metrics record"),
])
def test_a_damaged_metrics_log_is_a_one_line_error(tmp_path, content, message):
    """Before, these ended in a UnicodeDecodeError, AttributeError or TypeError traceback on resume, or (a NaN
    epoch) dropped the record without a word."""
    log = MetricsLog(tmp_path / "m.jsonl")
    log.path.write_bytes(content)
    with pytest.raises(DataCorruptError, match=message) as e:
        log.read()
    assert "\n" not in str(e.value)


def test_resume_after_a_cut_off_metrics_line(tmp_path):
    """The issue's reproduction: killed while appending epoch 2's line (as older versions appended in place),
    after epoch 1's checkpoint; the checkpoint is valid and --resume must work."""
    quick = ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "train.epochs=2", "train.progress=false",
             "train.max_steps_per_epoch=2"]
    run = tmp_path / "run"
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(load_config(None, quick), run, callbacks=(_stop_after_first_epoch,)).fit()
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 2, "train_loss": 2.3')
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert [r["epoch"] for r in RunDir(run).metrics.read()] == [1, 2]
    assert (run / "metrics.jsonl").read_text().count("\n") == 2


def test_metrics_append_is_atomic(tmp_path, monkeypatch):
    """A failing append (here the rename) leaves the log as it was: no partial line, no temporary file."""
    log = MetricsLog(tmp_path / "m.jsonl")
    log.append({"epoch": 1})
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(WriteError, match="cannot write .*m.jsonl: Input/output error"):
        log.append({"epoch": 2})
    assert log.path.read_text() == '{"epoch": 1}\n' and [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]


def test_stale_temporary_files_are_removed(tmp_path):
    run = RunDir(tmp_path)
    for name in (".checkpoint.pt.abc123.tmp", ".metrics.jsonl.x.tmp", ".other.tmp", "notes.tmp",
                 "..deepspike-run.k2.tmp", ".metrics.csv.q1.tmp", ".reproduce.json.z9.tmp"):  # every file a run writes
        (tmp_path / name).write_bytes(b"")
    run.remove_stale_temps()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp", "notes.tmp"]


def test_no_command_writes_over_a_run_file(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create()
    run.write_config(load_config(None, ["method.name=ann"]))
    for name in ("config.yaml", "metrics.jsonl", "checkpoint.pt", "summary.json"):
        with pytest.raises(ConfigError, match=f"is the run file {name} of run"):
            check_not_run_file(run.path / name, "--out")
    (tmp_path / "link.nir").symlink_to(run.checkpoint_path)
    with pytest.raises(ConfigError, match="is the run file checkpoint.pt"):
        check_not_run_file(tmp_path / "link.nir", "--nir")
    check_not_run_file(run.path / "model.nir", "--nir")  # other names in a run folder are fine
    check_not_run_file(tmp_path / "summary.json", "--out")  # and run names outside a run


def test_output_path_checks(tmp_path):
    (tmp_path / "f").write_text("x")
    assert check_output_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert check_output_file(tmp_path / "new" / "t.md", "--out") == tmp_path / "new" / "t.md"
    assert not (tmp_path / "new").exists()  # nothing created
    with pytest.raises(ConfigError, match="is not a folder"):
        check_output_dir(tmp_path / "f", "--out")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "f" / "run", "--out")
    with pytest.raises(ConfigError, match="is not a folder"):
        check_output_dir("/dev/null", "--out")
    with pytest.raises(ConfigError, match="is a folder; give the name of a file"):
        check_output_file(tmp_path, "--nir")
    with pytest.raises(ConfigError, match="is not a regular file"):
        check_output_file("/dev/null", "--nir")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output_file(tmp_path / "f" / "model.nir", "--nir")


def test_strict_json_handles_numpy_and_refuses_nothing_finite():
    assert strict_json({"a": np.float32(1.5), "b": np.float64("nan"), "c": np.array([1.0, np.inf])}) == (
        '{"a": 1.5, "b": null, "c": [1.0, null]}')


def test_written_files_follow_the_umask(tmp_path):
    atomic_write_text(tmp_path / "f", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


@pytest.mark.parametrize(("content", "reason"), [(b"{bad", "Expecting property name"), (b"\xff\xfe", "can't decode"),
                                                 (b"[1]", "it holds a list")])
def test_a_damaged_summary_is_one_line(tmp_path, content, reason):
    (tmp_path / "summary.json").write_bytes(content)
    with pytest.raises(DataCorruptError, match=f"summary.json is not a JSON summary: .*{reason}"):
        RunDir(tmp_path).read_summary()
