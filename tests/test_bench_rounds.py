"""``--rounds`` of the micro-benchmarks ``bench_neurons.py``, ``bench_psn.py``, ``bench_stdp.py`` and
``bench_surrogates.py``: a value that is not a whole number from 1 is one error line with status 2, before anything
runs. ``--rounds 0`` built and warmed up the first case, then ended in a StatisticsError (median of no rounds;
bench_surrogates: a KeyError, no times kept, after two warm-up rounds of every surrogate on 4.2 M neurons)."""

from __future__ import annotations

import sys

import pytest

from benchmark_loader import load_benchmark


@pytest.mark.parametrize("script", ["bench_neurons", "bench_psn", "bench_stdp", "bench_surrogates"])
@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many"])
def test_rounds_that_are_not_a_whole_number_from_1_are_one_error_line_with_status_2(script, value, monkeypatch,
                                                                                    capsys):
    bench = load_benchmark(script, monkeypatch)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--rounds", value])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert f"argument --rounds: must be a whole number from 1, got '{value}'" in out.err.splitlines()[-1]
    assert not out.out
