"""``compare`` reads each run's ``analysis.json`` checked against what a table row needs (``ROW_FIELDS``): a file
that is not UTF-8 JSON, not an object, or lacks a field or has one of another type is a one-line error, exit 2."""

import json
import math
import shutil
from pathlib import Path

import pytest

from deepspike.analysis.compare import COLUMNS, ROW_FIELDS, compare_runs, comparison_row, markdown_table, read_analysis
from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.training.trainer import Trainer
from nested_edit import with_entry
from tiny_run import TINY

PRESET = "45nm_fp32"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny stbp run with its ``analysis/analysis.json`` (no sweeps but 4-bit weights)."""
    run = tmp_path_factory.mktemp("compare") / "run"
    Trainer(load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"]), run).fit()
    options = AnalysisOptions(limit=50, bits=(4,), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)
    analyze_run(run, run / "analysis", options)
    return run


@pytest.fixture(scope="module")
def analysis(run):
    return json.loads((run / "analysis" / "analysis.json").read_text())


def _compare_error(capsys, path) -> str:
    """``deepspike compare path`` must exit 2 with one error line; returns it."""
    assert main(["compare", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    return captured.err


@pytest.mark.parametrize(("text", "problem"), [
    ("{bad", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("{}", "no 'run'"),
    ("[1]", "it holds a list, not an object"),
    ("[" * 100_000, "not JSON: maximum recursion depth exceeded"),
])
def test_a_file_that_is_not_an_analysis_is_one_line(tmp_path, capsys, text, problem):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert _compare_error(capsys, path).startswith(f"deepspike: error: {path} is not an analysis file ({problem}")


def test_a_run_whose_analysis_json_is_binary_is_one_line(run, tmp_path, capsys):
    copy_ = tmp_path / "b2"
    shutil.copytree(run, copy_)
    (copy_ / "analysis" / "analysis.json").write_bytes(b"\xf8\x01binary\x00" * 3)
    assert _compare_error(capsys, copy_) == (f"deepspike: error: {copy_ / 'analysis' / 'analysis.json'} is not an "
                                             "analysis file (not UTF-8 text: byte 0xf8 at offset 0)\n")


def test_a_run_folders_row_is_named_by_the_folder_given(run, tmp_path, capsys):
    """A copy of a run (the same checkpoint, so its copied analysis is current) showed the original's name, two rows
    alike; a run folder's row is now named as given, as a run analysed now is. An analysis folder keeps the name."""
    copy_ = tmp_path / "copy"
    shutil.copytree(run, copy_)
    assert main(["compare", str(run), str(copy_), str(copy_ / "analysis")]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| {run}", f"| {copy_}", f"| {run}"]


def _set(analysis, path, value):
    """``with_entry`` with ``*`` in ``path`` standing for the preset's key."""
    return with_entry(analysis, [PRESET if key == "*" else key for key in path], value)


def _name(path):
    return ".".join(PRESET if key == "*" else key for key in path)


@pytest.mark.parametrize(("path", "types", "optional"), ROW_FIELDS, ids=[_name(p) for p, _, _ in ROW_FIELDS])
def test_each_row_field_of_the_wrong_type_or_missing_is_named(analysis, tmp_path, path, types, optional):
    """A list is never a field's type; a field that may not be missing is named when it is."""
    file = tmp_path / "analysis.json"
    file.write_text(json.dumps(_set(analysis, path, ["x"])))
    with pytest.raises(DataCorruptError) as info:
        read_analysis(file)
    assert str(info.value).startswith(f"{file} is not an analysis file ({_name(path)!r} is a list, not ")
    file.write_text(json.dumps(_set(analysis, path, ...)))
    if optional:
        assert comparison_row(read_analysis(file), PRESET)["run"] == str(analysis["run"])
    else:
        with pytest.raises(DataCorruptError, match=f"no {_name(path)!r}"):
            read_analysis(file)


@pytest.mark.parametrize("path", [p for p, types, _ in ROW_FIELDS if type(None) in types])
def test_a_field_that_may_be_null_gives_a_row_when_it_is(analysis, tmp_path, path):
    """What ``ROW_FIELDS`` accepts ``comparison_row`` can tabulate (an ANN's analysis has no activity, latency)."""
    file = tmp_path / "analysis.json"
    file.write_text(json.dumps(_set(analysis, path, None)))
    assert "| run |" in markdown_table([comparison_row(read_analysis(file), PRESET)])


@pytest.mark.parametrize(("value", "problem"), [
    (True, "a boolean, not a number or null"),
    (10**400, "an integer of 1329 bits, not a number of at most 64 bits"),  # x / 1000 would overflow a float
])
def test_a_boolean_or_a_huge_integer_is_not_a_number(analysis, tmp_path, capsys, value, problem):
    file = tmp_path / "analysis.json"
    file.write_text(json.dumps(_set(analysis, ("energy", "*", "snn_pj"), value)))
    assert _compare_error(capsys, file).endswith(f"('energy.{PRESET}.snn_pj' is {problem})\n")


def test_a_good_analysis_json_gives_its_row(run, analysis, capsys):
    assert main(["compare", str(run)]) == 0
    row = comparison_row(analysis, PRESET)
    assert capsys.readouterr().out == markdown_table([row])
    assert row["accuracy (%)"] == 100 * analysis["accuracy"] and row["latency"] == "T=3"


def test_a_preset_of_ones_own_stored_in_the_analysis_prices_the_energy_column(run, analysis, tmp_path, capsys):
    """``analyze --add-preset mine:...`` stores the energies at ``mine``; a later ``compare --preset mine`` (another
    process: the preset is not registered there) shows them. It was refused as an unknown preset."""
    mine = with_entry(analysis, ("energy", "mine"), {"snn_pj": 12_345.0, "ann_pj": 99_999.0})
    file = tmp_path / "analysis.json"
    file.write_text(json.dumps(mine))
    assert main(["compare", str(file), "--preset", "mine"]) == 0
    assert "| 12.35 |" in capsys.readouterr().out  # 12,345 pJ = 12.35 nJ, the SNN's
    assert main(["compare", str(file), "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "energy preset 'nope' is neither built in (" in err
    assert f"nor in the analysis of {analysis['run']} (analyze --add-preset nope:" in err


def test_an_analysis_of_an_earlier_checkpoint_is_not_shown(tmp_path, capsys, monkeypatch):
    """A run resumed to more epochs after ``analyze``: compare analyses its current weights afresh instead of
    showing the old analysis.json; that file given directly is a one-line error."""
    options = AnalysisOptions(limit=50, bits=(4,), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)
    overrides = [*TINY[:-1], "schedule.name=step", "train.epochs=1", "train.max_steps_per_epoch=4", "optim.lr=0.05"]
    run = tmp_path / "run"
    Trainer(load_config(None, overrides), run).fit()
    old = analyze_run(run, run / "analysis", options)
    monkeypatch.chdir(tmp_path)
    analyze_run(Path("run"), tmp_path / "report", options)  # its own folder (analyze --out), the run named relative
    assert compare_runs([run], PRESET, limit=50)[0] == comparison_row(old, PRESET)  # current: read, not redone

    Trainer(load_config(run / "config.yaml", ["train.epochs=2"]), run, resume=True).fit()
    new = analyze_run(run, None, options)
    assert new["checkpoint_sha256"] != old["checkpoint_sha256"] and new["accuracy"] != old["accuracy"]
    assert compare_runs([run], PRESET, limit=50)[0] == comparison_row(new, PRESET)
    capsys.readouterr()  # the training's epoch lines
    for given, file in ((run / "analysis" / "analysis.json",) * 2, (tmp_path / "report", tmp_path / "report" /
                                                                     "analysis.json")):
        named = run if given == file else "run"
        assert _compare_error(capsys, given) == (
            f"deepspike: error: {file} analysed an earlier checkpoint of {named} (the run has trained on since); run "
            "deepspike analyze on it again\n")
    monkeypatch.chdir(tmp_path / "report")  # the recorded run path is absolute: found from anywhere
    assert "analysed an earlier checkpoint" in _compare_error(capsys, "analysis.json")


def test_a_pipe_or_line_break_in_a_name_keeps_the_table_whole():
    row = dict.fromkeys(COLUMNS, 1.0) | {"run": "runs/x|y", "method": "stbp\nnote", "model": None}
    line = markdown_table([row]).splitlines()[-1]
    assert line.startswith("| runs/x\\|y | stbp note | - |")
    assert line.replace("\\|", "").count("|") == len(COLUMNS) + 1


@pytest.mark.parametrize("limit", ["-5", "-1"])
def test_compare_refuses_a_negative_limit_also_when_every_run_has_its_analysis(run, capsys, limit):
    """--limit only counts for a run analysed now; with every analysis present -5 was accepted and ignored."""
    assert main(["compare", str(run), "--limit", limit]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"deepspike: error: --limit must be an integer >= 1 (test samples), got {limit}\n"


@pytest.mark.parametrize("preset", [["45nm_fp32"], None, 5])
def test_a_preset_that_is_not_a_name_is_refused_before_any_run_is_read(tmp_path, preset):
    # before: ds.compare(runs, ["45nm_fp32"]) analysed every run, then ended in TypeError "unhashable type: 'list'"
    with pytest.raises(ConfigError, match=r"^preset must be the name of an energy preset, e.g. '45nm_fp32', got "):
        compare_runs([tmp_path / "no_run"], preset)


@pytest.mark.parametrize(("path", "value", "problem"), [
    (("accuracy",), math.nan, "not JSON: NaN is not a JSON number"),
    (("latency", "value"), math.inf, "not JSON: Infinity is not a JSON number"),
    (("energy", "*", "snn_pj"), -math.inf, "not JSON: -Infinity is not a JSON number"),
    (("accuracy",), -5, "'accuracy' is -5, not a fraction in [0, 1]"),
    (("accuracy",), 1e308, "'accuracy' is 1e+308, not a fraction in [0, 1]"),
    (("accuracy_4bit",), 1.5, "'accuracy_4bit' is 1.5, not a fraction in [0, 1]"),
])
def test_a_non_finite_number_or_an_accuracy_outside_0_to_1_is_one_line(analysis, tmp_path, capsys, path, value,
                                                                        problem):
    """``analyze`` writes strict JSON (non-finite as null) and accuracies in [0, 1]: a file with NaN or Infinity (which
    Python's reader takes) or an accuracy of -5 gave a row of ``nan``, ``T=inf`` or ``-500`` cells and exit 0."""
    file = tmp_path / "analysis.json"
    file.write_text(json.dumps(_set(analysis, path, value)))
    assert _compare_error(capsys, file) == f"deepspike: error: {file} is not an analysis file ({problem})\n"


def test_accuracies_of_0_and_1_give_a_row(analysis, tmp_path):
    file = tmp_path / "analysis.json"
    file.write_text(json.dumps(_set(_set(analysis, ("accuracy",), 0), ("accuracy_4bit",), 1.0)))
    row = comparison_row(read_analysis(file), PRESET)
    assert row["accuracy (%)"] == 0 and row["acc @4 bit (%)"] == 100


def test_each_row_shows_the_test_samples_its_accuracy_is_over(run, tmp_path, capsys):
    """The stored analysis (``analyze --limit 50``) is read as it is whatever ``compare --limit`` says, while a run
    without one is analysed now on ``--limit`` samples: the two accuracies were over 50 and 100 samples and the table
    did not say so. Each row now shows its count (an analysis without the field: '-')."""
    fresh = tmp_path / "fresh"
    shutil.copytree(run, fresh, ignore=shutil.ignore_patterns("analysis"))
    assert main(["compare", str(run), str(fresh), "--limit", "100"]) == 0
    header, _, *rows = capsys.readouterr().out.splitlines()
    column = header.split(" | ").index("samples")
    assert [row.split(" | ")[column] for row in rows] == ["50", "100"]
    analysis = json.loads((run / "analysis" / "analysis.json").read_text())
    del analysis["samples"]
    assert comparison_row(analysis, PRESET)["samples"] is None
