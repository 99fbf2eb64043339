"""The TTFS peer benchmark's parent process (``benchmarks/bench_ttfs_peer.py``): its cases, options and files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_ttfs_peer  # noqa: E402


def test_a_case_past_its_timeout_is_an_error_row_not_the_end_of_the_run():
    """A TimeoutExpired traceback ended the whole run (the table was never printed); now it is one row."""
    args = argparse.Namespace(batch=1, warmup=0, steps=1, epochs=1, train_limit=1, test_limit=1, threads=1,
                              case_timeout=0.01)
    row = bench_ttfs_peer._spawn(sys.executable, args, "timing", "ttfs", {})
    assert row == {"part": "timing", "framework": "ttfs", "error": "timeout after 0.01 s"}


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--part", "timings", "argument --part: unknown 'timings'; valid: timing, accuracy"),
    ("--frameworks", "ttfs,exact", "argument --frameworks: unknown 'exact'"),
    ("--epochs", "0", "argument --epochs: must be a whole number from 1, got '0'"),
    ("--train-limit", "-1", "argument --train-limit: must be a whole number from 0, got '-1'"),
    ("--json", ".", "argument --json: the path . is a folder"),
])
def test_a_bad_option_is_one_error_line_with_status_2_before_any_case_runs(option, value, message, monkeypatch,
                                                                          capsys):
    """These ran cases that failed one by one (an unknown part ran the accuracy part, an unknown framework a
    KeyError row; ``--epochs 0`` scored an untrained net) or failed writing after the first case (``--json .``)."""
    monkeypatch.setattr(sys, "argv", ["bench_ttfs_peer.py", option, value])
    monkeypatch.setattr(bench_ttfs_peer, "_spawn", lambda *a: pytest.fail("a case ran"))
    with pytest.raises(SystemExit) as stop:
        bench_ttfs_peer.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert message in out.err.splitlines()[-1] and not out.out
