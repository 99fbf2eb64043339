"""The Open Neuromorphic benchmark's parent process (``benchmarks/bench_on.py``): its options and its files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_on  # noqa: E402


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--python-for", "snntorch", "argument --python-for: 'snntorch' is not FRAMEWORK=PATH"),
    ("--python-for", "snntorch=/nonexistent/python", "is not FRAMEWORK=PATH"),
    ("--python-for", f"snntroch={sys.executable}", "is not FRAMEWORK=PATH"),
    ("--steps", "0", "argument --steps: must be a whole number from 1, got '0'"),
    ("--neurons", "0", "argument --neurons: must be a whole number from 1, got '0'"),
    ("--frameworks", "deepspike,snn", "argument --frameworks: unknown 'snn'"),
    ("--case-timeout", "0", "argument --case-timeout: must be a finite number of seconds above 0"),
    ("--json", ".", "argument --json: the path . is a folder"),
    ("--markdown", ".", "argument --markdown: the path . is a folder"),
])
def test_a_bad_option_is_one_error_line_with_status_2_before_any_case_runs(option, value, message, monkeypatch,
                                                                          capsys):
    """These were a ValueError traceback (``--python-for snntorch``), a FileNotFoundError traceback after the cases
    before it (a missing interpreter), a row 'StatisticsError: no median for empty data' (``--steps 0``), a row of
    nothing (``--neurons 0``) or an IsADirectoryError after the whole run (``--json .``)."""
    monkeypatch.setattr(sys, "argv", ["bench_on.py", option, value])
    monkeypatch.setattr(bench_on, "_spawn", lambda *a: pytest.fail("a case ran"))
    with pytest.raises(SystemExit) as stop:
        bench_on.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert message in out.err.splitlines()[-1] and not out.out


def test_python_for_names_the_interpreter_of_one_framework(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_on.py", "--python-for", f"norse={sys.executable}"])
    rows = []
    monkeypatch.setattr(bench_on, "_spawn", lambda python, fw, *a: rows.append((fw, python)) or {"framework": fw,
                                                                                                "error": "x"})
    bench_on.main()
    assert ("norse", sys.executable) in rows and len(rows) == len(bench_on.FRAMEWORKS)


def test_markdown_without_a_file_prints_the_table_and_writes_no_file(monkeypatch, tmp_path, capsys):
    """``--markdown`` alone (as gpu_check.sh and run_all.py call it): argparse runs the path check on the const "-",
    which came back as Path("-"), so the table was also written to a file named "-" in the current folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_on.py", "--markdown", "--frameworks", "deepspike"])
    monkeypatch.setattr(bench_on, "_spawn", lambda python, fw, *a: {"framework": fw, "error": "x"})
    bench_on.main()
    assert "Open Neuromorphic benchmark" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())
