"""The benchmark scripts' option checks and result files.

A bad option value stops a script at once, before any case runs, with argparse's error (``SCRIPT: error: argument
--steps: must be a whole number from 1, got '0'``, exit status 2), where it used to end in a traceback or, worse,
in a table of error rows after the measuring. ``output_file`` checks a result path the same way up front (a run can
take hours); ``write_result`` writes it atomically (``deepspike.core.atomic``: a reader sees the old file or the new
one, never half of it) and turns a failed write into a one-line error, exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from deepspike.core.atomic import atomic_write_text, check_output_file
from deepspike.core.errors import UserError
from deepspike.core.options import is_finite, is_whole


def whole(low: int, high: float = math.inf) -> Callable[[str], int]:
    """An argparse ``type``: a whole number in ``low .. high`` (``is_whole``)."""
    span = f"from {low}" + (f" to {high}" if high != math.inf else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if not is_whole(value, low, high):
            raise argparse.ArgumentTypeError(f"must be a whole number {span}, got {text!r}")
        return value

    return parse


def wholes(low: int, high: float = math.inf) -> Callable[[str], list[int]]:
    """An argparse ``type``: a comma-separated, non-empty list of whole numbers in ``low .. high`` (``whole``)."""
    one = whole(low, high)

    def parse(text: str) -> list[int]:
        try:
            values = [one(item) for item in text.split(",")]
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{str(e).split(', got ')[0]} (or a list of them, comma separated), "
                                             f"got {text!r}") from None
        return values

    return parse


def positive(unit: str) -> Callable[[str], float]:
    """An argparse ``type``: a finite number of ``unit`` above 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (is_finite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a finite number of {unit} above 0, got {text!r}")
        return value

    return parse


seconds = positive("seconds")
"""An argparse ``type``: a finite number of seconds above 0."""


def output_file(text: str) -> Path:
    """An argparse ``type``: a path a result file can be written to (``check_output_file``), checked before the run."""
    try:
        return check_output_file(text, "the path")
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def names(valid: tuple[str, ...] | list[str]) -> Callable[[str], list[str]]:
    """An argparse ``type``: a comma-separated, non-empty list of names out of ``valid``."""

    def parse(text: str) -> list[str]:
        chosen = [name for name in text.split(",") if name]
        unknown = [name for name in chosen if name not in valid]
        if unknown or not chosen:
            what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "no name given"
            raise argparse.ArgumentTypeError(f"{what}; valid: {', '.join(valid)}")
        return chosen

    return parse


def write_result(parser: argparse.ArgumentParser, path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; a write that fails is ``parser``'s one-line error, exit status 2."""
    try:
        atomic_write_text(Path(path), text)
    except UserError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
