"""Paths a user gives (a recipe key, an environment variable): ``~`` expanded, one line when it cannot be."""

from __future__ import annotations

import os
from pathlib import Path

from deepspike.core.errors import ConfigError, one_line


def expand(path: str | os.PathLike, what: str = "data.data_dir") -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded to that home folder; a one-line ``ConfigError`` where
    there is none (``~nosuchuser/data``: pathlib's RuntimeError was a traceback)."""
    try:
        return Path(path).expanduser()
    except RuntimeError as e:
        raise ConfigError(f"{what} {str(path)!r}: cannot expand its '~' ({one_line(e)})") from e
