"""The issue 22 ablation script (``benchmarks/issue22_ablation.py``), its training faked: its rows and files."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from benchmark_loader import BENCHMARKS, full_disk, load_benchmark
from deepspike.config import load_config
from deepspike.config.schema import check_settings_used
from deepspike.training.run_setup import method_and_architecture


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


ROW_NAMES = ["tet-tdbn", "tet_lambda0.05-tdbn", "ce-tdbn", "mse-tdbn", "tet-tebn", "tet-bn", "tet-none",
             "tet-tdbn-plif", "tet-tdbn-psn"]


@pytest.mark.parametrize("row", ROW_NAMES)
def test_every_row_gets_past_a_new_runs_checks(ablation, row):
    """Each row's overrides on the recipe pass the checks a new run makes before training (``build_new_run``'s
    settings and method checks). Before: 'tet-tdbn-plif' was refused ('method.decay=0.5 has no effect unless
    method.neuron is one with a fixed decay, not plif ...'): the recipe's decay, which plif never read."""
    assert set(ablation.ROWS) == set(ROW_NAMES)  # the rows listed here are the script's
    config = load_config(BENCHMARKS.parent / ablation.RECIPE, ablation.ROWS[row])
    check_settings_used(config)
    method, arch = method_and_architecture(config, 10, (1, 28, 28))
    method.check_new_run(arch)
