"""bfloat16 rows inside numba kernels: numba has no bfloat16 type, so a kernel gets a bfloat16 tensor's memory as
``uint16`` bits (``tensor.view(torch.uint16).numpy()``) and computes in float32 rows of its own.

A bfloat16 number is the upper half of a float32 (sign, 8 exponent bits, 7 mantissa bits), so

    decode:  f32 bits = u16 << 16                                   (exact)
    encode:  u16 = (b + 0x7FFF + ((b >> 16) & 1)) >> 16             (b the float32 bits: round to nearest, ties to
             even, overflow to infinity), and 0x7FC0 for a NaN,

which is what torch's float32 -> bfloat16 conversion computes, bit for bit for every number; a NaN stays a NaN (torch
writes 0x7FC0 or, vectorised, 0xFFFF). ``tests/neurons/test_bfloat16_rows.py`` checks both against torch.

The row helpers let one kernel source serve float32/float64 arrays and bfloat16 bits; which body runs is chosen
when numba compiles the kernel for its argument types (``numba.extending.overload``), so a float kernel compiles
exactly as it did without them:

    load_row(src, buf)       the row to read: ``src`` itself (float), or ``src`` decoded into ``buf`` (bits)
    staging_row(dst, buf)    the row to write: ``dst`` itself (float), or ``buf`` (bits: ``commit_row`` encodes it)
    commit_row(row, dst)     nothing (float: ``row`` is ``dst``), or ``dst = encode(row)`` (bits)

``buf`` is a float32 block-local row at least as long as the row. Imported lazily (numba is slow to load).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.fused_constants import KERNEL_OPTIONS

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)

BFLOAT16_NAN = 0x7FC0  # the quiet NaN torch's scalar conversion writes


@nb.njit(**KERNEL_OPTIONS)
def decode_row(bits, out):
    """``out[n] = float32(bits[n])`` for bfloat16 bits ``bits [n]`` (uint16) into a contiguous float32 ``out``."""
    wide = out.view(np.uint32)
    for n in range(bits.shape[0]):
        wide[n] = np.uint32(bits[n]) << np.uint32(16)


@nb.njit(**KERNEL_OPTIONS)
def encode_row(row, bits):
    """``bits[n] = bfloat16(row[n])`` for a contiguous float32 ``row``: rounded to nearest, ties to even; NaN ->
    ``BFLOAT16_NAN`` (module docstring)."""
    wide = row.view(np.uint32)
    for n in range(row.shape[0]):
        b = wide[n]
        if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
            bits[n] = np.uint16(BFLOAT16_NAN)
        else:
            bits[n] = np.uint16((b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))


def _is_bits(array) -> bool:
    """Whether the numba array type holds bfloat16 bits (``uint16``)."""
    return isinstance(array, types.Array) and array.dtype == types.uint16


def load_row(src, buf):
    """The float row to read for ``src`` (module docstring); called from numba kernels only."""
    raise NotImplementedError("load_row runs inside numba kernels")


def staging_row(dst, buf):
    """The float row to write for ``dst`` (module docstring); called from numba kernels only."""
    raise NotImplementedError("staging_row runs inside numba kernels")


def commit_row(row, dst):
    """Write ``row`` out to ``dst`` (module docstring); called from numba kernels only."""
    raise NotImplementedError("commit_row runs inside numba kernels")


@overload(load_row)
def _load_row(src, buf):
    if _is_bits(src):
        def decoded(src, buf):
            out = buf[:src.shape[0]]
            decode_row(src, out)
            return out
        return decoded
    return lambda src, buf: src


@overload(staging_row)
def _staging_row(dst, buf):
    if _is_bits(dst):
        return lambda dst, buf: buf[:dst.shape[0]]
    return lambda dst, buf: dst


@overload(commit_row)
def _commit_row(row, dst):
    if _is_bits(dst):
        def encoded(row, dst):
            encode_row(row, dst)
        return encoded
    return lambda row, dst: None
