"""HDF5 global heaps that would make libhdf5 spin (``damaged_global_heap``), found before libhdf5 reads them.

Variable-length data (the text of a NIR file: node types, edge names, metadata) lives in *global heap
collections*. Each collection is ``"GCOL"``, version 1, 3 reserved bytes, its size (the whole collection, header
included), then objects: index (2 bytes), reference count (2), 4 reserved bytes, size, and the data padded to a
multiple of 8; index 0 is the collection's free space, whose size counts its header. A size is a length as wide as
the superblock says (8 bytes where h5py writes the file; 2 or 4 allowed), and both headers are padded to 16 bytes.
libhdf5 walks the objects with ``next = start + need``, ``need = 16 + pad8(size)`` for an object and
``need = size`` for the free space, in unsigned 64-bit arithmetic. A free-space size of 0 leaves
``next == start`` and a size near 2**64 wraps ``next`` backwards, so the walk never ends; a collection size that
runs past the real collection leads it there through the bytes that follow. So each collection is walked here
first, as libhdf5 would, and refused where libhdf5 would stall or go back (one that runs past the end of the file
libhdf5 refuses itself).
"""

from __future__ import annotations

import mmap

SIGNATURE = b"GCOL\x01"
"""A global heap collection's signature and version (libhdf5 refuses every other version itself)."""

HEADER = 16
"""Bytes of the collection header and of each object header: libhdf5 pads both to a multiple of 8 whatever the
width of their size field (2, 4 or 8 bytes), so both are 16 bytes."""

SUPERBLOCK = b"\x89HDF\r\n\x1a\n"
"""The HDF5 signature, at byte 0 or after a user block of 512 x 2^k bytes."""

WIDTHS = (2, 4, 8)
"""The widths of a length ("size of lengths" in the superblock) that the walk reads; h5py writes 8."""


def _size(data, at: int, width: int) -> int:
    """The unsigned little-endian length of ``width`` bytes at ``at``."""
    return int.from_bytes(data[at:at + width], "little")


def _step(index: int, size: int) -> int:
    """How far libhdf5 moves past an object, in its unsigned 64-bit arithmetic (``need``, wrapping), read as
    a signed offset: a huge size wraps to a small or negative step."""
    need = size if index == 0 else (HEADER + ((size + 7) % 2**64) // 8 * 8) % 2**64
    return need - 2**64 if need >= 2**63 else need


def _walk(data, start: int, width: int, budget: int) -> tuple[str | None, int]:
    """``(problem, steps)`` of the collection at ``start``: what would stop libhdf5's walk through it, if anything,
    and how many objects were walked (at most ``budget``)."""
    end = start + _size(data, start + 8, width)
    if end > len(data):  # libhdf5 refuses to read past the end itself ("actual len exceeds EOA")
        return None, 0
    at, steps = start + HEADER, 0
    while at + HEADER <= end and steps < budget:  # libhdf5 takes a tail shorter than a header for free space
        index, size = _size(data, at, 2), _size(data, at + 8, width)
        need = _step(index, size)
        if need <= 0 or need % 8:
            return f"its object at byte {at} (index {index}, size {size}) would stop the walk through it", steps
        at, steps = at + need, steps + 1
    return None, steps


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
    """What is wrong with a global heap collection of the HDF5 file ``path`` that libhdf5 would loop on, else None.

    Collections are found by their signature, so text that holds the signature is walked too, and refused only if
    its walk would loop as well. All walks together take at most one step per 8 bytes of the file: a file that
    needs more (many overlapping collections, which libhdf5 never writes) is refused.
    """
    with open(path, "rb") as f:
        if f.seek(0, 2) < len(SIGNATURE) + HEADER:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            width = length_size(data)
            if width is None:
                return None
            if width not in WIDTHS:
                return f"its lengths are {width} bytes wide, which is not read (2, 4 or 8)"
            budget = max(len(data) // 8, 1024)
            start = data.find(SIGNATURE)
            while start != -1 and start + HEADER <= len(data):  # a signature cut short: libhdf5 fails on it itself
                problem, steps = _walk(data, start, width, budget)
                if problem is not None:
                    return f"global heap at byte {start} is damaged: {problem}"
                budget -= steps
                if budget <= 0:
                    return "its global heaps hold more objects than the file has room for (overlapping heaps)"
                start = data.find(SIGNATURE, start + 1)
    return None
