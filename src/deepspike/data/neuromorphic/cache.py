"""On-disk cache of computed event frames, so the second run skips reading and binning events.

A cache entry is one ``.npz`` (uncompressed) holding ``x`` (frames, uint8) and ``y`` (labels), named by
the SHA-1 of a JSON key (the data set, the binning options and a fingerprint of the source files), under
``<data cache>/event_frames/``. It is written to a temporary file and renamed into place, so an
interrupted run never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from deepspike.data import paths


def cache_dir(data_dir) -> Path:
    """``<data_dir or $DEEPSPIKE_DATA[0] or ~/.cache/deepspike>/event_frames``."""
    return paths.download_dir(data_dir, "event_frames")


def files_fingerprint(files: Sequence[Path]) -> str:
    """SHA-1 over the sorted ``(name, size, modification time)`` of ``files``: changes when files are added,
    removed, resized or rewritten (HDF5 rewrites a small change in place, at the same size)."""
    h = hashlib.sha1()
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.as_posix()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def cached_arrays(folder: Path | None, key: dict, build: Callable[[], tuple[np.ndarray, np.ndarray]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from the cache entry of ``key`` in ``folder``, else ``build()`` them and store them.

    ``folder=None`` disables the cache.
    """
    if folder is None:
        return build()
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(folder) / f"{key.get('dataset', 'events')}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path) as f:
                return f["x"], f["y"]
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # unreadable entry: rebuild it
    x, y = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, x=x, y=y)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return x, y
