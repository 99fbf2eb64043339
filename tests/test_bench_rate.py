"""The rate-coded benchmark's parent process (``benchmarks/bench_rate.py``): its cases, its options, its files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_rate  # noqa: E402


def _case_args(**changes) -> argparse.Namespace:
    args = {"batch": 1, "warmup": 0, "steps": 1, "threads": 1, "memory_format": "contiguous", "precision": "fp32",
            "case_timeout": 1800.0}
    return argparse.Namespace(**{**args, **changes})


def test_a_case_past_its_timeout_is_an_error_row_not_the_end_of_the_run():
    """A case that outlives ``--case-timeout`` ended the whole run with a TimeoutExpired traceback, losing every row
    measured before it; now it is one row saying so."""
    row = bench_rate._spawn(sys.executable, _case_args(case_timeout=0.01), "ann", "lenet", 1, {})
    assert row == {"framework": "ann", "net": "lenet", "T": 1, "error": "timeout after 0.01 s"}


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--configs", "lenet", "argument --configs: 'lenet' is not NET:T"),
    ("--configs", "lenet:0", "argument --configs: 'lenet:0' is not NET:T"),
    ("--configs", "resnet50:4", "argument --configs: 'resnet50:4' is not NET:T"),
    ("--frameworks", "ann,snntroch", "argument --frameworks: unknown 'snntroch'; valid: ann, deepspike"),
    ("--steps", "0", "argument --steps: must be a whole number from 1, got '0'"),
    ("--batch", "-2", "argument --batch: must be a whole number from 1, got '-2'"),
    ("--rounds", "0", "argument --rounds: must be a whole number from 1, got '0'"),
    ("--case-timeout", "inf", "argument --case-timeout: must be a finite number of seconds above 0"),
    ("--json", ".", "argument --json: the path . is a folder"),
])
def test_a_bad_option_is_one_error_line_with_status_2_before_any_case_runs(option, value, message, monkeypatch,
                                                                          capsys):
    """These were a traceback (``--configs lenet``), a table of error rows after the run (an unknown net or
    framework, ``--steps 0``, ``--batch -2``), silently one round (``--rounds 0``) or a write that failed after
    the measuring (``--json .``)."""
    monkeypatch.setattr(sys, "argv", ["bench_rate.py", option, value, "--peer-python", "/nonexistent"])
    monkeypatch.setattr(bench_rate, "_spawn", lambda *a: pytest.fail("a case ran"))
    with pytest.raises(SystemExit) as stop:
        bench_rate.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert message in out.err.splitlines()[-1] and not out.out


def test_configs_expand_presets_into_net_and_timesteps():
    assert bench_rate.configs("lenet:3,deep") == [("lenet", 3), ("vgg11", 4), ("vgg11", 8), ("sew_resnet18", 4),
                                                  ("sew_resnet18", 8)]


@pytest.mark.parametrize(("code", "stderr", "said"), [
    (1, "x\nValueError: bad\n", "ValueError: bad"),
    (-9, "", "killed by signal 9"),
    (3, "  \n", "exit status 3, no output"),
])
def test_child_error_says_how_a_child_that_wrote_nothing_ended(code, stderr, said):
    """A child the OOM killer ends writes no stderr: its error was 'no output' here and an IndexError traceback in
    bench_memory_t.py and tensor_memory.py."""
    done = bench_rate.subprocess.CompletedProcess([], code, "", stderr)
    assert bench_rate.child_error(done) == said


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--steps", "0", "argument --steps: must be a whole number from 1, got '0'"),
    ("--steps", "2.5", "argument --steps: must be a whole number from 1, got '2.5'"),
    ("--warmup", "-1", "argument --warmup: must be a whole number from 0, got '-1'"),
])
def test_one_step_benchmarks_refuse_a_bad_step_count_in_one_line_with_status_2(option, value, message, monkeypatch,
                                                                              capsys):
    """``step_bench_args`` (bench_delays, bench_recurrent, bench_transformer): ``--steps 0`` built the nets and ended
    in a StatisticsError traceback (median of no steps), ``--steps 2.5`` in argparse's 'invalid int value', and
    ``--warmup -1`` was taken as no warm-up."""
    monkeypatch.setattr(sys, "argv", ["bench_delays.py", option, value])
    with pytest.raises(SystemExit) as stop:
        bench_rate.step_bench_args("d", lambda name: pytest.fail("a child ran"))
    assert stop.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_one_step_benchmarks_take_good_step_counts(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_transformer.py", "--steps", "3", "--warmup", "0", "--model", "b"])
    args = bench_rate.step_bench_args("d", lambda name: pytest.fail("a child ran"), ("a", "b"))
    assert (args.steps, args.warmup, args.model) == (3, 0, "b")
