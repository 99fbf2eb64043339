"""HDF5 global heaps that would make libhdf5 spin (``damaged_global_heap``), found before libhdf5 reads them.

Variable-length data (the text of a NIR file: node types, edge names, metadata) lives in *global heap
collections*. Each collection is ``"GCOL"``, version 1, 3 reserved bytes, its size (8 bytes, the whole
collection, header included), then objects: index (2 bytes), reference count (2), 4 reserved bytes, size (8)
and the data padded to a multiple of 8; index 0 is the collection's free space, whose size counts its header.
libhdf5 walks the objects with ``next = start + need``, ``need = 16 + pad8(size)`` for an object and
``need = size`` for the free space, in unsigned 64-bit arithmetic. A free-space size of 0 leaves
``next == start`` and a size near 2**64 wraps ``next`` backwards, so the walk never ends; a collection size that
runs past the real collection leads it there through the bytes that follow. So each collection is walked here
first, as libhdf5 would, and refused where libhdf5 would stall or go back (one that runs past the end of the file
libhdf5 refuses itself).
"""

from __future__ import annotations

import mmap
import struct

SIGNATURE = b"GCOL\x01"
"""A global heap collection's signature and version (libhdf5 refuses every other version itself)."""

HEADER = 16
"""Bytes of the collection header, and of each object header (8-byte lengths, as h5py writes)."""

SUPERBLOCK = b"\x89HDF\r\n\x1a\n"
"""The HDF5 signature, at byte 0 or after a user block of 512 x 2^k bytes."""


def _walk(data, start: int) -> tuple[int, str | None]:
    """``(end, problem)`` of the collection at ``start``: where it ends and what would stop libhdf5, if anything."""
    (size,) = struct.unpack_from("<Q", data, start + 8)
    end = start + size
    if end > len(data):  # libhdf5 refuses to read past the end itself ("actual len exceeds EOA")
        return start + HEADER, None
    at = start + HEADER
    while at + HEADER <= end:  # libhdf5 takes a tail shorter than an object header for free space
        index, size = struct.unpack_from("<H", data, at)[0], struct.unpack_from("<Q", data, at + 8)[0]
        need = _step(index, size)
        if need <= 0 or need % 8:
            return end, f"its object at byte {at} (index {index}, size {size}) would stop the walk through it"
        at += need
    return end, None


def _step(index: int, size: int) -> int:
    """How far libhdf5 moves past an object, in its unsigned 64-bit arithmetic (``need``, wrapping), read as
    a signed offset: a huge size wraps to a small or negative step."""
    need = size if index == 0 else (HEADER + ((size + 7) % 2**64) // 8 * 8) % 2**64
    return need - 2**64 if need >= 2**63 else need


def length_size(data) -> int | None:
    """The superblock's "size of lengths" in bytes (8 where h5py writes the file), else None (no superblock)."""
    at = 0
    while at + 16 <= len(data):
        if data[at:at + 8] == SUPERBLOCK:
            version = data[at + 8]
            return data[at + 14] if version in (0, 1) else data[at + 10]  # versions 2 and 3 pack their fields
        at = 512 if at == 0 else 2 * at
    return None


def damaged_global_heap(path: str) -> str | None:
    """What is wrong with the first damaged global heap collection of the HDF5 file ``path``, else None.

    Collections are found by their signature; ones that overlap are damaged too (libhdf5 never writes them). A file
    whose lengths are not 8 bytes (which h5py never writes) is not walked.
    """
    with open(path, "rb") as f:
        if f.seek(0, 2) < len(SIGNATURE) + HEADER:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if length_size(data) != 8:
                return None
            end = 0
            start = data.find(SIGNATURE)
            while start != -1:
                if start < end:
                    return f"global heap at byte {start} overlaps the one before it"
                if start + HEADER > len(data):
                    return f"global heap at byte {start} is cut short by the end of the file"
                end, problem = _walk(data, start)
                if problem is not None:
                    return f"global heap at byte {start} is damaged: {problem}"
                start = data.find(SIGNATURE, start + 1)
    return None
