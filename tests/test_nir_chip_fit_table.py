"""The chip-fit table script (``benchmarks/nir/chip_fit_table.py``), its mappers faked: its file."""

from __future__ import annotations

import sys

import pytest

from benchmark_loader import full_disk, load_benchmark


@pytest.fixture
def chip_fit_table(monkeypatch, tmp_path):
    """The script with every model fitting both chips, writing into ``tmp_path``."""
    module = load_benchmark("nir/chip_fit_table", monkeypatch)
    monkeypatch.setattr(module, "_cell", lambda fn: "yes")
    monkeypatch.setattr(module, "OUT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["chip_fit_table.py"])
    return module


def test_the_table_is_written(chip_fit_table, tmp_path):
    chip_fit_table.main()
    assert (tmp_path / "chip_fit_table.md").read_text().splitlines()[2] == "| mlp | yes | yes |"


def test_a_write_that_fails_keeps_the_old_table_and_is_one_error_line(chip_fit_table, tmp_path, monkeypatch, capsys):
    """``write_text`` truncated chip_fit_table.md before a full disk refused the bytes (an empty table and an
    OSError traceback); now the old table stays and the error is one line, status 2."""
    (tmp_path / "chip_fit_table.md").write_text("old\n")
    full_disk(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        chip_fit_table.main()
    monkeypatch.undo()
    assert stop.value.code == 2
    assert [p.name for p in tmp_path.iterdir()] == ["chip_fit_table.md"]
    assert (tmp_path / "chip_fit_table.md").read_text() == "old\n"
    assert capsys.readouterr().err.splitlines()[-1].startswith("chip_fit_table.py: error: cannot write ")


def test_an_unknown_argument_is_refused_before_any_model_is_mapped(chip_fit_table, monkeypatch, capsys):
    """The script took no options and ignored any it was given (``--out x.md`` still wrote the usual file)."""
    monkeypatch.setattr(chip_fit_table, "_cell", lambda fn: pytest.fail("a model was mapped"))
    monkeypatch.setattr(sys, "argv", ["chip_fit_table.py", "--out", "x.md"])
    with pytest.raises(SystemExit) as stop:
        chip_fit_table.main()
    assert stop.value.code == 2
    assert "unrecognized arguments: --out x.md" in capsys.readouterr().err
