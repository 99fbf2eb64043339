"""The training-memory-against-T benchmark's parent process (``benchmarks/bench_memory_t.py``): options, rows."""

from __future__ import annotations

import json
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


def test_peak_rss_baseline_is_taken_after_the_weights_and_the_batch_are_built(monkeypatch):
    """The docstring's peak RSS is over the training steps above the RSS before them, weights and batch not
    counted (as for peak tensors); the baseline was read before the batch-32 model and batch were built."""
    import bench_rate

    events = []

    def train_step(case, timesteps, batch=32):
        events.append(f"build batch {batch}")
        return lambda: events.append("step")

    monkeypatch.setattr(bench_memory_t, "_train_step", train_step)
    monkeypatch.setattr(bench_memory_t, "_peak_tensor_mb", lambda step: 1.0)
    monkeypatch.setattr(bench_rate, "_reset_peak", lambda: events.append("reset peak") or True)
    monkeypatch.setattr(bench_rate, "_status_kb", lambda key: events.append(key) or 1024)
    row = bench_memory_t.measure("deepspike-bptt", 2, 1)
    assert events == ["build batch 1", "step", "build batch 32", "reset peak", "VmRSS", "step", "step", "VmHWM"]
    assert row["peak_rss_mb"] == 0


def _fake_children(monkeypatch, peak_mb: float, calls: list):
    def run(cmd, **kwargs):
        case, t = cmd[cmd.index("--case") + 1].split(":")
        calls.append((case, int(t)))
        row = {"case": case, "T": int(t), "peak_tensors_mb": 1.0, "peak_rss_mb": peak_mb, "step_s": 0.1}
        return bench_memory_t.subprocess.CompletedProcess(cmd, 0, json.dumps(row) + "\n", "")

    monkeypatch.setattr(bench_memory_t.subprocess, "run", run)


@pytest.mark.parametrize(("case", "max_gb", "runs", "skip"), [
    ("deepspike-bptt", 7.0, [4], "about 8 GB (linear in T)"),
    ("deepspike-checkpoint", 3.0, [4], "about 4 GB (as sqrt(T))"),
    ("deepspike-checkpoint", 5.0, [4, 16], None),
    ("deepspike-ottt", 1.5, [4], "about 2 GB (flat in T)"),
    ("deepspike-sltt", 2.5, [4, 16], None),
])
def test_max_gb_skips_any_case_whose_extrapolated_peak_is_over_it(case, max_gb, runs, skip, monkeypatch, capsys):
    """``--max-gb`` skipped only BPTT and the peers (linear extrapolation), though the docstring says any case; a
    checkpointed case (peak as sqrt(T)) or an online one (flat) over the limit ran anyway."""
    calls = []
    _fake_children(monkeypatch, 2048.0, calls)
    _main(monkeypatch, "--cases", case, "--timesteps", "4,16", "--max-gb", str(max_gb))
    assert calls == [(case, t) for t in runs]
    last = capsys.readouterr().out.splitlines()[-1]
    assert (f"'skipped': '{skip}'" in last) if skip else "'peak_rss_mb': 2048.0" in last


def test_a_child_killed_without_a_word_is_a_row_not_a_traceback(monkeypatch, capsys):
    """A case the kernel's OOM killer ends writes no stderr; ``stderr.splitlines()[-1]`` was an IndexError that
    lost every row measured before it."""
    monkeypatch.setattr(bench_memory_t.subprocess, "run",
                        lambda cmd, **k: bench_memory_t.subprocess.CompletedProcess(cmd, -9, "", ""))
    _main(monkeypatch, "--cases", "deepspike-bptt", "--timesteps", "4")
    assert "'skipped': 'killed by signal 9'" in capsys.readouterr().out
