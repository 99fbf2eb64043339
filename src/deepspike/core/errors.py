"""Errors a user can cause.

Every error that bad input can trigger (an unknown name, a value out of range, missing data) is one of
these. Each is a subclass of the built-in the caller would expect (``ValueError`` or
``FileNotFoundError``), so library users can catch the usual types. The CLI catches ``UserError`` and
prints its one-line message without a traceback, then exits with status 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


class UserError(Exception):
    """Marker base class: an error caused by input, reported to the user in one line."""


class ConfigError(UserError, ValueError):
    """A configuration value, name or key is invalid."""


class UnusedOptionError(ConfigError):
    """An option set away from its default where the run would not read it (``core.options.check_unused``):
    ``section`` and ``key`` name it (``method``, ``decay``), ``value`` and ``default`` are its values, ``needs`` says
    when it takes effect (``config.load`` resets such a recipe value that a command-line override made unused)."""

    def __init__(self, message: str, section: str, key: str, value: object, default: object, needs: str) -> None:
        super().__init__(message)
        self.section, self.key, self.value, self.default, self.needs = section, key, value, default, needs

    @property
    def dotted(self) -> str:
        """``section.key``, e.g. ``method.decay``."""
        return f"{self.section}.{self.key}"


class DataNotFoundError(UserError, FileNotFoundError):
    """A data set (or a checkpoint, a run directory) could not be found where it was looked for."""


class DataCorruptError(UserError, ValueError):
    """A file exists but its contents are not in the expected format or fail a checksum."""


class WriteError(UserError, OSError):
    """An output file could not be written: the disk is full, the folder is read-only, or the path cannot be
    a file or folder (e.g. ``--out`` names an existing file). Nothing was replaced."""


class TrainingDiverged(UserError, FloatingPointError):
    """Training produced a non-finite loss or non-finite weights; the run keeps its last finished epoch."""


def one_line(error: object) -> str:
    """A library's error text squeezed onto one line (our messages must stay one line)."""
    return " ".join(str(error).split())


def os_reason(error: OSError) -> str:
    """The operating system's words for ``error`` ("No space left on device"), else the error's own text."""
    return os.strerror(error.errno) if error.errno else str(error)


def os_error_line(error: OSError) -> str:
    """One line for an ``OSError`` no command turned into a ``UserError``: the operating system's words and the
    path(s) involved, e.g. ``No such file or directory: /proc/x`` or ``File exists: runs/dangling``."""
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    shown = [p if len(p) <= 120 else p[:117] + "..." for p in paths]
    return f"{os_reason(error)}: {' -> '.join(shown)}" if shown else os_reason(error)


def unknown_choice(kind: str, value: object, valid: Iterable[str]) -> ConfigError:
    """Build the standard error for a name that is not one of the valid choices.

    >>> str(unknown_choice("model", "vgg99", ["lenet", "vgg9"]))
    "unknown model 'vgg99'; valid: lenet, vgg9"
    """
    return ConfigError(f"unknown {kind} {value!r}; valid: {', '.join(sorted(valid))}")


def check_pool_padding(padding: int | tuple[int, int], kernel_size: int | tuple[int, int], where: str) -> None:
    """``ConfigError`` unless ``0 <= p <= k // 2`` on each axis, so that every pooling window holds at least one
    real input (a window made only of padding has no input). ``padding``/``kernel_size``: int or (h, w)."""
    ps = tuple(padding) if isinstance(padding, tuple | list) else (padding, padding)
    ks = tuple(kernel_size) if isinstance(kernel_size, tuple | list) else (kernel_size, kernel_size)
    if not all(0 <= p <= k // 2 for p, k in zip(ps, ks)):
        raise ConfigError(
            f"{where}: padding {padding} must be in [0, kernel_size // 2] for kernel_size {kernel_size} "
            "(a window made only of padding has no input)"
        )
