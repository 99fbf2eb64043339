"""``benchmarks/bench_surrogates.py``: its options."""

from __future__ import annotations

import sys

import pytest

from benchmark_loader import load_benchmark


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many"])
def test_rounds_that_are_not_a_whole_number_from_1_are_one_error_line_with_status_2(value, monkeypatch, capsys):
    """``--rounds 0`` ran the two warm-up rounds of every surrogate on 4.2 M neurons, then ended in a KeyError (no
    times kept); now nothing runs."""
    bench = load_benchmark("bench_surrogates", monkeypatch)
    monkeypatch.setattr(sys, "argv", ["bench_surrogates.py", "--rounds", value])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert f"argument --rounds: must be a whole number from 1, got '{value}'" in out.err.splitlines()[-1]
    assert not out.out
