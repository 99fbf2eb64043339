"""``benchmarks/bench_stdp.py``: its options."""

from __future__ import annotations

import sys

import pytest

from benchmark_loader import load_benchmark


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many"])
def test_rounds_that_are_not_a_whole_number_from_1_are_one_error_line_with_status_2(value, monkeypatch, capsys):
    """``--rounds 0`` built and warmed up the first case, then ended in a StatisticsError (median of no rounds); now
    nothing runs."""
    bench = load_benchmark("bench_stdp", monkeypatch)
    monkeypatch.setattr(sys, "argv", ["bench_stdp.py", "--rounds", value])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert f"argument --rounds: must be a whole number from 1, got '{value}'" in out.err.splitlines()[-1]
    assert not out.out
