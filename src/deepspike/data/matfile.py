"""A walk through the variable headers of a MATLAB 5 ``.mat`` file, before scipy's reader is given it.

Layout (MAT-File Format, MathWorks): a 128-byte header whose last two bytes are ``IM`` (little-endian) or ``MI``
(big-endian), then data elements, each a tag ``(type uint32, bytes uint32)`` and its data padded to 8 bytes; a tag
whose type has high bits set is a small element (``bytes = type >> 16``, the data in the tag's last 4 bytes). A
variable is a ``miMATRIX`` element (type 14), or a ``miCOMPRESSED`` one (15) holding one zlib-deflated ``miMATRIX``;
its sub-elements are the array flags (a ``miUINT32`` pair: bits 0-7 the class, bit 11 "complex"), the dimensions,
the name, then the real part (and, when complex, the imaginary part) in a numeric element type.

scipy's reader (1.17) crashes the process (a segmentation fault or bus error) on one flipped byte there: a complex
flag on an array that holds no imaginary part, or a real part of an element type that is no number type. So the
variables a loader reads are walked here first and refused in one line where they are not real numeric arrays.
"""

from __future__ import annotations

import os
import struct
import zlib

MI_MATRIX, MI_COMPRESSED = 14, 15
NUMBER_TYPES = frozenset((1, 2, 3, 4, 5, 6, 7, 9, 12, 13))
"""The element types of numbers: miINT8, miUINT8, miINT16, miUINT16, miINT32, miUINT32, miSINGLE, miDOUBLE, miINT64,
miUINT64 (8, 10 and 11 are reserved)."""
NUMERIC_CLASSES = range(6, 16)
"""The array classes of numbers: mxDOUBLE_CLASS (6) to mxUINT64_CLASS (15)."""
COMPLEX = 0x800
HEAD = 512
"""The bytes of a variable read (inflated) to find its flags, dimensions, name and the tag of its real part."""


def _tag(data: bytes, at: int, order: str) -> tuple[int, int, int, int]:
    """``(type, bytes, data start, next element)`` of the element whose tag starts at ``at`` (small or not)."""
    kind, size = struct.unpack_from(order + "II", data, at)
    if kind >> 16:  # a small element: its data is the tag's last 4 bytes
        return kind & 0xFFFF, kind >> 16, at + 4, at + 8
    return kind, size, at + 8, at + 8 + size + (-size % 8)


def _variable_problem(body: bytes, order: str, names: tuple[str, ...]) -> str | None:
    """What makes the ``miMATRIX`` sub-elements ``body`` unsafe for scipy, when its name is one of ``names``."""
    try:
        _, _, at, after = _tag(body, 0, order)  # the array flags
        flags = struct.unpack_from(order + "I", body, at)[0]
        _, _, _, after = _tag(body, after, order)  # the dimensions
        _, size, at, after = _tag(body, after, order)  # the name
        name = body[at:at + size].decode("ascii", errors="replace")
        real = _tag(body, after, order)[0]
    except struct.error:  # cut short by the file: scipy refuses it itself; by HEAD: a header no real file has
        return None if len(body) < HEAD - 8 else f"a variable's header runs past {HEAD - 8} bytes"
    if name not in names:
        return None
    if flags & 0xFF not in NUMERIC_CLASSES or flags & COMPLEX:
        return (f"variable {name!r} is of class {flags & 0xFF}{' (complex)' if flags & COMPLEX else ''}, not a real "
                "numeric array (classes 6 to 15)")
    if real not in NUMBER_TYPES:
        return f"variable {name!r} stores its values as element type {real}, which is no number type"
    return None


def mat5_problem(path: str | os.PathLike, names: tuple[str, ...]) -> str | None:
    """What is wrong with variable ``names`` of the MATLAB 5 file ``path`` that would crash scipy's reader (module
    docstring), else None (also for a file that is no MATLAB 5 file: scipy says so itself)."""
    with open(path, "rb") as f:
        head = f.read(128)
        order = {b"IM": "<", b"MI": ">"}.get(head[126:128])
        if len(head) < 128 or order is None or struct.unpack_from(order + "H", head, 124)[0] != 0x0100:
            return None  # no MATLAB 5 file (7.3 is HDF5 with version 0x0200): scipy says what it is
        end, at = os.fstat(f.fileno()).st_size, 128
        while at + 8 <= end:
            f.seek(at)
            kind, size, _, step = _tag(f.read(8), 0, order)
            after = at + step
            if kind == MI_COMPRESSED:  # one deflated element, its own tag first; not padded
                try:
                    inflated = zlib.decompressobj().decompress(f.read(min(size, HEAD)), HEAD)
                except zlib.error:  # scipy refuses it itself
                    return None
                kind = struct.unpack_from(order + "I", inflated)[0] if len(inflated) >= 8 else 0
                body, after = inflated[8:], at + 8 + size
            elif kind == MI_MATRIX:
                body = f.read(min(size, HEAD))
            else:  # scipy refuses any other element where a variable starts ("Expecting miMATRIX type")
                return None
            if kind == MI_MATRIX and (problem := _variable_problem(body, order, names)):
                return problem
            at = after
    return None
