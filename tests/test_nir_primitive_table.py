"""The NIR primitive table script (``benchmarks/nir/primitive_table.py``), its tools faked: its files."""

from __future__ import annotations

import json
import sys

import pytest

from benchmark_loader import full_disk, load_benchmark
from deepspike.deploy.peers import TOOLS


@pytest.fixture
def primitive_table(monkeypatch, tmp_path):
    """The script with no peer installed and deepspike importing and exporting every primitive, writing into
    ``tmp_path``."""
    module = load_benchmark("nir/primitive_table", monkeypatch)
    every = {p: "yes" for p in module.PRIMITIVES}
    monkeypatch.setattr(module, "installed", lambda: [])
    monkeypatch.setattr(module, "import_table", lambda nir: {"deepspike from_nir": every,
                                                             "deepspike GraphSimulator": every})
    monkeypatch.setattr(module, "our_exports", lambda nir: set(module.PRIMITIVES))
    monkeypatch.setattr(module, "OUT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["primitive_table.py"])
    return module


def test_the_tables_are_written(primitive_table, tmp_path):
    primitive_table.main()
    assert json.loads((tmp_path / "primitive_table.json").read_text())["counts"] == {"deepspike": [16, 16]}
    assert (tmp_path / "primitive_table.md").read_text().splitlines()[-1] == "| **count (export, import)** | 16 | 16 |"


def test_the_json_names_the_tools_that_are_not_installed(primitive_table, tmp_path, monkeypatch):
    """As conformance.json: a tool not installed has no column, and the JSON did not say it was missing (a reader
    could not tell 'not tested' from 'left out')."""
    monkeypatch.setattr(primitive_table, "installed", lambda: ["snntorch"])
    monkeypatch.setattr(primitive_table, "version", lambda tool: "9.9")
    monkeypatch.setattr(primitive_table, "import_table", lambda nir: {
        t: {p: "yes" for p in primitive_table.PRIMITIVES} for t in ("deepspike from_nir", "deepspike GraphSimulator",
                                                                      "snntorch")})
    monkeypatch.setattr(primitive_table, "peer_exports", lambda tool: set())
    primitive_table.main()
    saved = json.loads((tmp_path / "primitive_table.json").read_text())
    assert saved["tools"] == ["deepspike", "snntorch"] and saved["missing"] == [t for t in TOOLS if t != "snntorch"]


def test_a_write_that_fails_keeps_the_old_files_and_is_one_error_line(primitive_table, tmp_path, monkeypatch,
                                                                      capsys):
    """``write_text`` truncated primitive_table.json before a full disk refused the bytes (an empty file and an
    OSError traceback); now the old file stays and the error is one line, status 2."""
    (tmp_path / "primitive_table.json").write_text("{}\n")
    full_disk(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        primitive_table.main()
    monkeypatch.undo()
    assert stop.value.code == 2
    assert [p.name for p in tmp_path.iterdir()] == ["primitive_table.json"]
    assert (tmp_path / "primitive_table.json").read_text() == "{}\n"
    assert capsys.readouterr().err.splitlines()[-1].startswith("primitive_table.py: error: cannot write ")
