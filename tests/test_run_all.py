"""``make bench`` (``benchmarks/run_all.py``): which sections it runs, where it writes, and that it writes whole."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import run_all  # noqa: E402


def _main(monkeypatch, *argv: str) -> list[list[str]]:
    """Run ``run_all.main`` with ``argv``; the benchmark commands it would run are recorded, not run."""
    ran: list[list[str]] = []
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--no-setup", *argv])
    monkeypatch.setattr(run_all, "_run", lambda cmd: ran.append(cmd) or "| a table |\n")
    run_all.main()
    return ran


@pytest.mark.parametrize(("argv", "message"), [
    (["--only", "rates"], "argument --only: unknown 'rates'; valid: rate, rate_cl,"),
    (["--only", ","], "argument --only: no name given"),
])
def test_an_unknown_section_is_an_error_not_a_run_of_nothing(tmp_path, monkeypatch, capsys, argv, message):
    """``--only rates`` (for ``rate``) ran no benchmark, rewrote the results file unchanged and said 'wrote'."""
    out = tmp_path / "RESULTS.md"
    out.write_text("kept\n")
    with pytest.raises(SystemExit) as stop:
        _main(monkeypatch, "--out", str(out), *argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]
    assert out.read_text() == "kept\n"


def test_an_output_path_that_cannot_be_written_stops_the_run_before_it_starts(tmp_path, monkeypatch, capsys):
    """``--out`` under a file used to fail only at the end, after every benchmark had run (hours)."""
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stop:
        _main(monkeypatch, "--out", str(tmp_path / "file" / "RESULTS.md"), "--only", "ttfs")
    assert stop.value.code == 2
    assert "argument --out:" in capsys.readouterr().err.splitlines()[-1]


def test_a_section_replaces_its_markers_and_keeps_the_rest(tmp_path, monkeypatch):
    out = tmp_path / "RESULTS.md"
    out.write_text("# notes\n\n<!-- bench:ttfs:start -->\nold\n<!-- bench:ttfs:end -->\n\ntail\n")
    ran = _main(monkeypatch, "--out", str(out), "--only", "ttfs")
    assert [Path(cmd[1]).name for cmd in ran] == ["bench_ttfs_layers.py"]
    text = out.read_text()
    assert text.startswith("# notes\n\n<!-- bench:ttfs:start -->\n## TTFS layers") and text.endswith("\n\ntail\n")
    assert "old" not in text and "| a table |" in text
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]  # written through a temporary file, none left
