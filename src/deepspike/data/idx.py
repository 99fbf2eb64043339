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


MAX_IDX_DIMS = 32
"""The most dimensions an IDX header may give (numpy's arrays take 64; image sets use 1 to 3)."""
DEFLATE_MAX_RATIO = 1032
"""Deflate's largest compression ratio (about 1032:1): a ``.gz`` of ``S`` bytes holds at most ``1032 S`` bytes."""


def idx_layout(head: bytes, source: str = "<bytes>") -> tuple[np.dtype, tuple[int, ...], int, int]:
    """``(dtype, shape, header bytes, data bytes)`` of the IDX header at the start of ``head``; a one-line
    :class:`DataCorruptError` for wrong magic bytes, more than ``MAX_IDX_DIMS`` dimensions or a cut header."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
        raise DataCorruptError(f"{source} is not an IDX file (magic bytes {head[:4].hex() or 'missing'})")
    ndim = head[3]
    if ndim > MAX_IDX_DIMS:
        raise DataCorruptError(f"{source}: IDX header gives {ndim} dimensions (at most {MAX_IDX_DIMS} are read)")
    header = 4 + 4 * ndim
    if len(head) < header:
        raise DataCorruptError(f"{source}: IDX header truncated")
    shape = struct.unpack(f">{ndim}I", head[4:header])
    dtype = np.dtype(IDX_TYPES[head[2]])
    return dtype, shape, header, math.prod(shape) * dtype.itemsize  # Python integers: a huge shape cannot wrap to 0


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, once its size matches its IDX header (:func:`read_raw_idx`); for a name ending in ``.gz`` the
    decompressed IDX header and at most one byte more than the data it announces (:func:`read_gz_idx`)."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            return read_gz_idx(path)
        return read_raw_idx(path)
    except (OSError, EOFError, zlib.error) as e:
        raise DataCorruptError(f"cannot read {path}: {one_line(e)}") from e


def read_raw_idx(path: Path) -> bytes:
    """The bytes of a raw IDX file, read only when its size is the header's plus the data the header announces: a
    one-line :class:`DataCorruptError` before anything more is read otherwise (any large file at an IDX name was read
    whole first: 1 TB raised a MemoryError traceback)."""
    with open(path, "rb") as f:
        head = f.read(4)
        head += f.read(4 * head[3]) if len(head) == 4 else b""
        _, shape, header, expected = idx_layout(head, str(path))
        size = os.fstat(f.fileno()).st_size
        if size - header != expected:
            raise DataCorruptError(f"{path}: IDX header says shape {shape} ({expected} bytes of data) but the file "
                                   f"holds {size - header}; it is truncated or corrupt")
        return head + f.read()


def read_gz_idx(path: Path) -> bytes:
    """Decompress the IDX header of a ``.gz``, then at most the data it announces plus one byte (enough to tell that
    there is more): a small file that inflates to gigabytes is refused after reading what its header says, and a
    header announcing more than deflate can put in the file's size (``DEFLATE_MAX_RATIO``) before any data is
    read. Each a one-line :class:`DataCorruptError`; :func:`parse_idx` checks the rest."""
    with gzip.open(path, "rb") as f:
        head = f.read(4)
        head += f.read(4 * head[3]) if len(head) == 4 else b""
        _, shape, _, expected = idx_layout(head, str(path))
        if expected > DEFLATE_MAX_RATIO * os.path.getsize(path):
            raise DataCorruptError(f"{path}: IDX header says shape {shape} ({expected} bytes of data), more than a "
                                   f"gzip file of {os.path.getsize(path)} bytes can hold; it is corrupt")
        data = f.read(expected + 1)
    if len(data) > expected:
        raise DataCorruptError(f"{path}: IDX header says shape {shape} ({expected} bytes of data) but the file holds "
                               "more; it is corrupt")
    return head + data


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array of the stored type and shape (native byte order)."""
    dtype, shape, header, expected = idx_layout(data, source)
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
