"""The exact-snn-nn spike-time check (``benchmarks/ttfs_peer_exactness.py``): its options and its file."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from benchmark_loader import full_disk, load_benchmark


@pytest.fixture
def exactness(monkeypatch):
    module = load_benchmark("ttfs_peer_exactness", monkeypatch)
    monkeypatch.setattr(module, "ExactTTFSLinear", lambda *a, **k: pytest.fail("a layer was built"))
    return module


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--grids", "2001,1", "argument --grids: must be a whole number from 3 (or a list of them, comma separated)"),
    ("--grids", "41,x", "argument --grids: must be a whole number from 3"),
    ("--markdown", ".", "argument --markdown: the path . is a folder"),
])
def test_a_bad_option_is_one_error_line_with_status_2_before_any_layer_is_built(option, value, message, exactness,
                                                                                monkeypatch, capsys):
    """``--grids 41,x`` was a ValueError traceback; ``--grids 2001,1`` measured grid 2001, then stopped on the
    library's 'grid_pts must be at least 3' (grid 2: the same; grid 1 would divide by zero in the spacing column);
    ``--markdown .`` measured everything and then failed on IsADirectoryError."""
    monkeypatch.setattr(sys, "argv", ["ttfs_peer_exactness.py", option, value])
    with pytest.raises(SystemExit) as stop:
        exactness.main()
    assert stop.value.code == 2
    out = capsys.readouterr()
    assert message in out.err.splitlines()[-1] and not out.out


def test_a_markdown_write_that_fails_keeps_the_old_file(exactness, tmp_path, monkeypatch, capsys):
    """``--markdown`` was written with ``write_text`` (truncated first): a full disk left an empty file and a
    traceback; now the old file stays and the error is one line, status 2."""
    out = tmp_path / "out.md"
    out.write_text("old\n")
    monkeypatch.setattr(sys, "argv", ["ttfs_peer_exactness.py", "--grids", "41", "--markdown", str(out)])
    monkeypatch.setattr(exactness, "latency_encode", lambda x, t_max: x)
    monkeypatch.setattr(exactness, "ExactTTFSLinear", lambda *a, **k: SimpleNamespace(weight=torch.zeros(1, 2),
                                                                                       n_out=1))
    monkeypatch.setattr(exactness, "time_error", lambda layer, t_in: (0, 0, None))
    full_disk(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        exactness.main()
    monkeypatch.undo()
    assert stop.value.code == 2 and out.read_text() == "old\n"
    assert ": error: cannot write " in capsys.readouterr().err.splitlines()[-1]
