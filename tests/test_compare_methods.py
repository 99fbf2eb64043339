"""The cross-method table script (``benchmarks/compare_methods.py``): its options and the file it updates."""

from __future__ import annotations

import pytest

from benchmark_loader import full_disk, load_benchmark
from deepspike.core.errors import WriteError


@pytest.fixture
def compare_methods(monkeypatch):
    """The script with one fake run whose row is 'row'."""
    module = load_benchmark("compare_methods", monkeypatch)
    monkeypatch.setattr(module, "find_runs", lambda root, dataset: ["run"])
    monkeypatch.setattr(module, "load_or_analyze", lambda run, limit: {})
    monkeypatch.setattr(module, "comparison_row", lambda analysis, preset: "row")
    monkeypatch.setattr(module, "markdown_table", lambda rows: "| table |\n")
    return module


def test_a_write_that_fails_leaves_results_md_as_it_was(compare_methods, tmp_path, monkeypatch):
    """``write_block`` wrote RESULTS.md with ``write_text``, which truncated it before a full disk refused the bytes:
    the whole RESULTS.md was lost (an empty file). Now the file is replaced atomically or not at all."""
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nkeep me\n")
    full_disk(monkeypatch)
    with pytest.raises(WriteError, match="No space left on device"):
        compare_methods.write_block(results, "| table |\n")
    monkeypatch.undo()
    assert results.read_text() == "# Results\n\nkeep me\n"
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]


def test_a_failed_write_is_one_error_line_with_status_2(compare_methods, tmp_path, monkeypatch, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("old\n")
    full_disk(monkeypatch)
    assert compare_methods.main(["--write", str(results)]) == 2
    monkeypatch.undo()
    assert results.read_text() == "old\n"
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "analysed run" and f": error: cannot write {results}: No space left on device" in err[1]
    assert len(err) == 2


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--write", ".", "argument --write: the path . is a folder"),
    ("--limit", "-5", "argument --limit: must be a whole number from 0, got '-5'"),
])
def test_a_bad_option_is_one_error_line_with_status_2_before_any_run_is_analysed(option, value, message,
                                                                                 compare_methods, monkeypatch,
                                                                                 capsys):
    """``--write .`` analysed every run (with --analyze: hours) and then failed on IsADirectoryError; ``--limit -5``
    was taken as 'the first -5 test images'."""
    monkeypatch.setattr(compare_methods, "load_or_analyze", lambda run, limit: pytest.fail("a run was analysed"))
    with pytest.raises(SystemExit) as stop:
        compare_methods.main([option, value])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]
