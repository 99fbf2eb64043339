"""The eager-against-compiled benchmark's parent process (``benchmarks/bench_compile.py``): its options."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_compile  # noqa: E402


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--steps", "0", "argument --steps: must be a whole number from 1, got '0'"),
    ("--steps", "ten", "argument --steps: must be a whole number from 1, got 'ten'"),
    ("--warmup", "-1", "argument --warmup: must be a whole number from 0, got '-1'"),
    ("--nets", "scnn_digit", "argument --nets: unknown 'scnn_digit'; valid: scnn_digits, fmnist_plif, rsnn_rows"),
    ("--modes", "eager,max_autotune", "argument --modes: unknown 'max_autotune'; valid: eager, default"),
])
def test_a_bad_option_is_one_error_line_with_status_2_before_any_case_runs(option, value, message, monkeypatch,
                                                                          capsys):
    """``--steps 0`` ran every (net, mode) child into an error row (an empty median); an unknown net or mode did the
    same (a KeyError, an unknown compile mode) after compiling the others; ``--warmup -1`` was taken."""
    monkeypatch.setattr(sys, "argv", ["bench_compile.py", option, value])
    monkeypatch.setattr(bench_compile, "child", lambda *a: pytest.fail("a case ran"))
    with pytest.raises(SystemExit) as stop:
        bench_compile.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert message in out.err.splitlines()[-1] and not out.out


def test_the_chosen_nets_and_modes_run_eager_first_and_last(monkeypatch, capsys):
    runs = []
    monkeypatch.setattr(sys, "argv", ["bench_compile.py", "--nets", "rsnn_rows", "--modes", "default,eager"])
    monkeypatch.setattr(bench_compile, "child", lambda net, mode, warmup, steps: runs.append((net, mode)) or
                        {"net": net, "mode": mode, "error": "not run"})
    bench_compile.main()
    assert runs == [("rsnn_rows", "eager"), ("rsnn_rows", "default"), ("rsnn_rows", "eager")]
