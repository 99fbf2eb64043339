"""On-disk cache of computed event frames, so the second run skips reading and binning events.

A cache entry is one ``.npz`` (uncompressed) holding ``x`` (frames, uint8) and ``y`` (labels), named by
the SHA-1 of a JSON key (the data set, the binning options and a fingerprint of the source files), under
``<data cache>/event_frames/``. It is written to a temporary file and renamed into place
(``core.atomic.atomic_write``), so an interrupted run never leaves a half-written entry; an entry that does not
read back whole (damaged on disk) is deleted and built again.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from deepspike.core.atomic import atomic_write
from deepspike.data import paths
from deepspike.data.neuromorphic.formats import NPY_ERRORS


def cache_dir(data_dir) -> Path:
    """``<data_dir or $DEEPSPIKE_DATA[0] or ~/.cache/deepspike>/event_frames``."""
    return paths.download_dir(data_dir, "event_frames")


def files_fingerprint(files: Sequence[Path]) -> str:
    """SHA-1 over the sorted ``(name, size, modification time)`` of ``files``: changes when files are added,
    removed, resized or rewritten (HDF5 rewrites a small change in place, at the same size). A listed path that is
    no regular file (a broken link, a folder, a pipe, a device) is a one-line ``DataCorruptError``, before anything
    is read (``paths.check_regular_file``)."""
    h = hashlib.sha1()
    for f in sorted(files):
        paths.check_regular_file(f)
        st = f.stat()
        h.update(f"{f.as_posix()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def cached_arrays(folder: Path | None, key: dict, build: Callable[[], tuple[np.ndarray, np.ndarray]],
                  check: Callable[[tuple[int, ...]], bool | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from the cache entry of ``key`` in ``folder``, else ``build()`` them and store them.

    ``folder=None`` disables the cache. ``check(shape of x)``, read from the entry's header, runs before a cached
    entry's arrays are read (its memory check: ``build`` makes its own; False: frames of another shape than ``build``
    makes); an entry whose header does not read, gives frames of another type than uint8 or that ``check`` finds of
    another shape is built again, before its arrays are read (one of another shape was read back as it was).
    """
    if folder is None:
        return build()
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(folder) / f"{key.get('dataset', 'events')}-{digest}.npz"
    if path.is_file():
        header = _stored_header(path)
        fits = header is not None and header[1] == np.uint8 and (check is None or check(header[0]) is not False)
        if fits:  # frames of another type or shape: not an entry this code wrote for the key
            entry = _read_entry(path)
            if entry is not None:
                return entry
        path.unlink(missing_ok=True)  # unreadable or damaged entry: rebuild it
    x, y = build()
    atomic_write(path, lambda out: np.savez(out, x=x, y=y))
    return x, y


def _stored_header(path: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    """The shape and type of a cache entry's ``x`` from its ``.npy`` header, nothing of the array read; None where the
    header does not read (the entry is damaged)."""
    try:
        with zipfile.ZipFile(path) as z, z.open("x.npy") as f:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            return tuple(int(n) for n in shape), dtype
    except (*NPY_ERRORS, KeyError, zipfile.BadZipFile, NotImplementedError, RuntimeError):
        return None


def _read_entry(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, y)`` of a cache entry; None for one that does not read (cut, flipped bytes: a bad zip or CRC; a damaged
    header, ``formats.NPY_ERRORS``, which numpy reads before the CRC is checked; a member's compression method or
    encryption flag changed in the zip's directory: zipfile's NotImplementedError, RuntimeError) or whose arrays do
    not belong together (no labels per sample) or are not of the types every entry is written in (uint8 frames, int64
    labels: float64 frames took 8 times the memory the check of the header's shape counted, float labels were cut to
    whole ones, in silence)."""
    try:
        with np.load(path) as f:
            x, y = f["x"], f["y"]
    except (*NPY_ERRORS, KeyError, zipfile.BadZipFile, NotImplementedError, RuntimeError):
        return None
    whole = x.ndim >= 1 and y.ndim == 1 and len(x) == len(y) and x.dtype == np.uint8 and y.dtype == np.int64
    return (x, y) if whole else None
