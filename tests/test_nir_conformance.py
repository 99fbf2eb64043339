"""The NIR conformance matrix script (``benchmarks/nir/conformance.py``), its tools faked: its files, its options."""

from __future__ import annotations

import json
import sys

import pytest

from benchmark_loader import full_disk, load_benchmark
from deepspike.deploy.peers import TOOLS


@pytest.fixture
def conformance(monkeypatch, tmp_path):
    """The script with snnTorch as the one installed tool and every check giving the same spikes, writing into
    ``tmp_path``."""
    module = load_benchmark("nir/conformance", monkeypatch)
    monkeypatch.setattr(module, "installed", lambda: ["snntorch"])
    monkeypatch.setattr(module, "version", lambda tool: "9.9")
    monkeypatch.setattr(module, "build", lambda *a: None)
    monkeypatch.setattr(module, "sample_input", lambda *a: None)
    monkeypatch.setattr(module, "check_tool", lambda *a, **k: {"equal": True})
    monkeypatch.setattr(module, "OUT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["conformance.py", "--steps", "3"])
    return module


def test_the_matrix_names_the_tools_that_are_not_installed(conformance, tmp_path):
    """A tool that is not installed had no column and conformance.json did not say it was missing: a reader
    could not tell 'not tested' from 'left out'."""
    conformance.main()
    missing = [t for t in TOOLS if t != "snntorch"]
    saved = json.loads((tmp_path / "conformance.json").read_text())
    assert saved["missing"] == missing and {r["tool"] for r in saved["rows"]} == {"snntorch"}
    table = (tmp_path / "conformance.md").read_text()
    assert table.startswith("| net | snntorch 9.9 |")
    assert table.endswith(f"Not installed here, so not in the matrix: {', '.join(missing)}.\n")


def test_a_write_that_fails_keeps_the_old_file_and_is_one_error_line(conformance, tmp_path, monkeypatch, capsys):
    """``write_text`` truncated conformance.json before a full disk refused the bytes (an empty file and an
    OSError traceback); now the old file stays and the error is one line, status 2."""
    (tmp_path / "conformance.json").write_text('{"old": 1}\n')
    full_disk(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        conformance.main()
    monkeypatch.undo()
    assert stop.value.code == 2
    assert (tmp_path / "conformance.json").read_text() == '{"old": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conformance.json"]
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"conformance.py: error: cannot write {tmp_path / 'conformance.json'}: No space left")


@pytest.mark.parametrize(("option", "value"), [("--steps", "0"), ("--batch", "-1"), ("--steps", "1e3")])
def test_a_bad_step_or_batch_count_is_one_error_line_with_status_2(option, value, conformance, monkeypatch, capsys):
    """``--steps 0`` ran every tool into error rows, ``--steps 1e3`` was argparse's 'invalid int value'."""
    monkeypatch.setattr(conformance, "check_tool", lambda *a, **k: pytest.fail("a check ran"))
    monkeypatch.setattr(sys, "argv", ["conformance.py", option, value])
    with pytest.raises(SystemExit) as stop:
        conformance.main()
    assert stop.value.code == 2
    assert f"argument {option}: must be a whole number from 1, got '{value}'" in capsys.readouterr().err
