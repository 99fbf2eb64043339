"""The e-prop memory benchmark (``benchmarks/bench_eprop.py``): options, and its figures at tiny T."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_eprop  # noqa: E402
import bench_memory_t  # noqa: E402


def test_a_bad_option_is_one_error_line_with_status_2_before_any_case_runs(monkeypatch, capsys):
    monkeypatch.setattr(bench_memory_t.subprocess, "run", lambda *a, **k: pytest.fail("a case ran"))
    monkeypatch.setattr(sys, "argv", ["bench_eprop.py", "--cases", "deepspike-ottt"])
    with pytest.raises(SystemExit) as stop:
        bench_eprop.main()
    assert stop.value.code == 2
    assert "argument --cases: unknown 'deepspike-ottt'" in capsys.readouterr().err.splitlines()[-1]


def test_eprops_peak_tensors_do_not_grow_with_t_and_hold_the_eligibility():
    """The adaptation eligibility of both weights onto the 256 neurons, B x 256 x 700 and B x 256 x 256 float32
    values (the rsnn's layers have no biases), whatever T is (from T = 3: the first steps have no eligibility yet)."""
    rows = [bench_memory_t.measure("deepspike-eprop", t, 1, bench_eprop._train_step) for t in (3, 12)]
    assert rows[1]["peak_tensors_mb"] == pytest.approx(rows[0]["peak_tensors_mb"], abs=1.0)  # T x 4: + < 1 MB
    eligibility_mb = 32 * 256 * (700 + 256) * 4 / 2**20
    assert eligibility_mb <= rows[0]["peak_tensors_mb"] <= 1.2 * eligibility_mb
