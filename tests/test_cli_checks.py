"""The benchmark scripts' option checks and result files (``benchmarks/cli_checks.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cli_checks  # noqa: E402


@pytest.mark.parametrize(("text", "low", "value"), [("0", 0, 0), ("7", 1, 7), (" 3 ", 1, 3)])
def test_whole_accepts_whole_numbers_in_range(text, low, value):
    assert cli_checks.whole(low)(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "1e3", "nan", "", "two", "11"])
def test_whole_refuses_anything_else(text):
    with pytest.raises(argparse.ArgumentTypeError, match="must be a whole number from 1 to 10"):
        cli_checks.whole(1, 10)(text)


@pytest.mark.parametrize("text", ["0", "-5", "nan", "inf", "soon"])
def test_seconds_refuses_what_is_not_a_finite_positive_time(text):
    with pytest.raises(argparse.ArgumentTypeError, match="finite number of seconds above 0"):
        cli_checks.seconds(text)


def test_names_refuses_unknown_and_empty_lists():
    parse = cli_checks.names(("a", "b"))
    assert parse("b,a,") == ["b", "a"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown 'c'; valid: a, b"):
        parse("a,c")
    with pytest.raises(argparse.ArgumentTypeError, match="no name given"):
        parse(",")


def test_write_result_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.md"
    path.write_text("old\n")
    cli_checks.write_result(argparse.ArgumentParser(prog="bench"), path, "new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"]  # no temporary file left


def test_a_failed_write_is_one_error_line_with_status_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stop:
        cli_checks.write_result(argparse.ArgumentParser(prog="bench"), tmp_path / "file" / "out.md", "x")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: cannot write ") and err.count("\n") == 1


def test_output_file_refuses_a_folder_before_the_run(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder"):
        cli_checks.output_file(str(tmp_path))
    assert cli_checks.output_file(str(tmp_path / "new.json")) == tmp_path / "new.json"


def test_wholes_reads_a_comma_separated_list_and_refuses_any_bad_item():
    assert cli_checks.wholes(1)("4,16, 64") == [4, 16, 64]
    for text in ("4,0", "abc", "", "4,,8"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be a whole number from 1 .or a list of them"):
            cli_checks.wholes(1)(text)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "lots"])
def test_positive_refuses_what_is_not_a_finite_number_above_0(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"must be a finite number of GB above 0, got '{text}'"):
        cli_checks.positive("GB")(text)
    assert cli_checks.positive("GB")("0.5") == 0.5
