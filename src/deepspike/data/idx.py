"""Reader for the IDX format of MNIST-style files (raw or gzip-compressed).

Layout (big-endian): magic = ``0x00 0x00 <type> <ndim>``, then ``ndim`` uint32 sizes, then the values in
C order. Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. Images are
``idx3`` (``[N, rows, cols]``, type 0x08, magic 2051), labels ``idx1`` (``[N]``, magic 2049).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from deepspike.core.errors import DataCorruptError
from deepspike.data.paths import one_line

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, decompressed when the name ends with ``.gz``."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataCorruptError(f"cannot read {path}: {one_line(e)}") from e


MAX_IDX_DIMS = 32
"""The most dimensions an IDX header may give (numpy's arrays take 64; image sets use 1 to 3)."""


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array of the stored type and shape (native byte order)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataCorruptError(f"{source} is not an IDX file (magic bytes {data[:4].hex() or 'missing'})")
    ndim = data[3]
    if ndim > MAX_IDX_DIMS:
        raise DataCorruptError(f"{source}: IDX header gives {ndim} dimensions (at most {MAX_IDX_DIMS} are read)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataCorruptError(f"{source}: IDX header truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python integers: a huge header cannot wrap around to 0
    if len(data) - header != expected:
        raise DataCorruptError(f"{source}: IDX header says shape {shape} ({expected} bytes of data) but the "
                               f"file holds {len(data) - header}; it is truncated or corrupt")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw); with ``ndim`` given, also check the number of dimensions."""
    arr = parse_idx(read_bytes(path), str(path))
    if ndim is not None and arr.ndim != ndim:
        raise DataCorruptError(f"{path}: expected an IDX array with {ndim} dimension(s), "
                               f"got shape {arr.shape}")
    return arr
