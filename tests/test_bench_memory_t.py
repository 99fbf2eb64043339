"""The training-memory-against-T benchmark's parent process (``benchmarks/bench_memory_t.py``): options, rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_memory_t  # noqa: E402


def _main(monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_memory_t.py", *argv])
    bench_memory_t.main()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--timesteps", "abc", "argument --timesteps: must be a whole number from 1 (or a list of them, comma separated)"),
    ("--timesteps", "4,0", "argument --timesteps: must be a whole number from 1"),
    ("--timesteps", "", "argument --timesteps: must be a whole number from 1"),
    ("--steps", "0", "argument --steps: must be a whole number from 1, got '0'"),
    ("--cases", "deepspike-bpt", "argument --cases: unknown 'deepspike-bpt'; valid: deepspike-bptt"),
    ("--max-gb", "nan", "argument --max-gb: must be a finite number of GB above 0, got 'nan'"),
    ("--max-gb", "0", "argument --max-gb: must be a finite number of GB above 0, got '0'"),
])
def test_a_bad_option_is_one_error_line_with_status_2_before_any_case_runs(option, value, message, monkeypatch,
                                                                          capsys):
    """``--timesteps abc`` was a ValueError traceback; ``--steps 0``, an unknown case or ``--max-gb 0`` ran every
    case (rows of errors, or every case after the first skipped)."""
    monkeypatch.setattr(bench_memory_t.subprocess, "run", lambda *a, **k: pytest.fail("a case ran"))
    with pytest.raises(SystemExit) as stop:
        _main(monkeypatch, option, value)
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert message in out.err.splitlines()[-1] and not out.out
