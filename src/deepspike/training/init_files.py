"""Files a run can start from besides runs (``method.init_from: FILE``): one reader per file suffix, registered by
the layer that reads the format (``deploy`` registers ``.nir``: ``deploy.nir_init.start_from_nir``), so training
starts from a file without importing that layer. A method lists the suffixes it starts from in ``init_files``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

FileReader = Callable[[Path, nn.Module, Any], None]
"""``reader(path, model, config)``: copies the file's weights into the built net ``model`` of the run whose recipe is
``config``, or raises a one-line error."""

_READERS: dict[str, FileReader] = {}


def register_init_file(suffix: str, reader: FileReader) -> None:
    """``method.init_from`` paths ending in ``suffix`` (lower case, with its dot: ".nir") are read by ``reader``."""
    _READERS[suffix.lower()] = reader


def init_file_reader(path: str | Path) -> FileReader | None:
    """The reader of ``path``'s suffix, None when no reader takes it (a run directory)."""
    return _READERS.get(Path(path).suffix.lower())
