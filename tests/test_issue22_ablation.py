"""The issue 22 ablation script (``benchmarks/issue22_ablation.py``), its training faked: its rows and files."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from benchmark_loader import full_disk, load_benchmark


@pytest.fixture
def ablation(monkeypatch):
    """The script with a training that ends at once (accuracy 0.5, or NaN for the 'ce-tdbn' row)."""
    module = load_benchmark("issue22_ablation", monkeypatch)
    runs = []

    def train(recipe, run, overrides):
        runs.append(run.name)
        return {"test_accuracy": float("nan") if run.name == "ce-tdbn" else 0.5, "train_seconds": 4.0}

    monkeypatch.setattr(module.api, "train", train)
    monkeypatch.setattr(module.api, "spike_activity", lambda run: SimpleNamespace(spikes_per_sample=1234.0))
    module.runs = runs
    return module


def test_an_unknown_row_is_refused_before_any_row_trains(ablation, tmp_path, monkeypatch, capsys):
    """``OUT tet-tdbn tet-tdbnn`` trained tet-tdbn (minutes) and then stopped on a KeyError traceback."""
    monkeypatch.setattr(sys, "argv", ["issue22_ablation.py", str(tmp_path), "tet-tdbn", "tet-tdbnn"])
    with pytest.raises(SystemExit) as stop:
        ablation.main()
    assert stop.value.code == 2 and ablation.runs == []
    assert "error: unknown row 'tet-tdbnn'; valid: tet-tdbn, " in capsys.readouterr().err.splitlines()[-1]


def test_no_output_folder_is_a_usage_error_not_an_index_error(ablation, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["issue22_ablation.py"])
    with pytest.raises(SystemExit) as stop:
        ablation.main()
    assert stop.value.code == 2 and "the following arguments are required: out_dir" in capsys.readouterr().err


def test_the_row_file_is_strict_json(ablation, tmp_path, monkeypatch, capsys):
    """A NaN accuracy was written as the bare token NaN, which strict JSON readers refuse; now it is null."""
    monkeypatch.setattr(sys, "argv", ["issue22_ablation.py", str(tmp_path), "ce-tdbn"])
    ablation.main()
    saved = json.loads((tmp_path / "ce-tdbn" / "ablation_row.json").read_text(), parse_constant=pytest.fail)
    assert saved["test_accuracy"] is None and saved["spikes"] == 1234.0
    assert capsys.readouterr().out.splitlines()[-1] == "| ce | tdbn | lif | nan | 1,234 | 10 |"


def test_a_write_that_fails_keeps_the_old_row_file_and_is_one_error_line(ablation, tmp_path, monkeypatch, capsys):
    """The row file was written with ``write_text`` (truncated first): a full disk left an empty file and a
    traceback; now the old file stays and the error is one line, status 2."""
    (tmp_path / "tet-tdbn").mkdir()
    (tmp_path / "tet-tdbn" / "ablation_row.json").write_text("{}")
    monkeypatch.setattr(sys, "argv", ["issue22_ablation.py", str(tmp_path), "tet-tdbn"])
    full_disk(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        ablation.main()
    monkeypatch.undo()
    assert stop.value.code == 2 and (tmp_path / "tet-tdbn" / "ablation_row.json").read_text() == "{}"
    assert ": error: cannot write " in capsys.readouterr().err.splitlines()[-1]
