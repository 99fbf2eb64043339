"""The exact tensor-memory benchmark's parent process (``benchmarks/tensor_memory.py``): options, failed cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tensor_memory  # noqa: E402


def _main(monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["tensor_memory.py", *argv])
    tensor_memory.main()


def test_a_child_killed_without_a_word_is_reported_and_the_run_goes_on(monkeypatch, capsys):
    """A case the kernel's OOM killer ends writes no stderr; ``stderr.splitlines()[-1]`` was an IndexError that
    ended the run; now the case is reported failed and the others still run."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd[-1])
        return tensor_memory.subprocess.CompletedProcess(cmd, -9 if "snntorch" in cmd[-1] else 0, "1.5 2.5\n", "")

    monkeypatch.setattr(tensor_memory.subprocess, "run", run)
    _main(monkeypatch, "--cases", "lenet:2")
    out = capsys.readouterr()
    assert calls == [f"{fw}:lenet:2" for fw in tensor_memory.FRAMEWORKS]
    assert "lenet T=2 snntorch: failed (killed by signal 9)" in out.err
    assert out.out.count("saved     1.5 MB, peak in a step     2.5 MB") == len(tensor_memory.FRAMEWORKS) - 1


@pytest.mark.parametrize(("value", "message"), [
    ("lenet", "argument --cases: 'lenet' is not NET:T"),
    ("lenet:0", "argument --cases: 'lenet:0' is not NET:T"),
    ("lenet:x", "argument --cases: 'lenet:x' is not NET:T"),
    ("resnet50:4", "argument --cases: 'resnet50:4' is not NET:T"),
    ("dep", "argument --cases: 'dep' is not NET:T"),
])
def test_a_bad_case_list_is_one_error_line_with_status_2_before_any_case_runs(value, message, monkeypatch, capsys):
    """``--cases lenet`` or ``lenet:x`` (or a misspelt preset) was a ValueError traceback; an unknown net or T = 0
    ran every framework into a failure line."""
    monkeypatch.setattr(tensor_memory.subprocess, "run", lambda *a, **k: pytest.fail("a case ran"))
    with pytest.raises(SystemExit) as stop:
        _main(monkeypatch, "--cases", value)
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert message in out.err.splitlines()[-1] and not out.out
