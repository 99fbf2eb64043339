"""Triton when it is installed (it ships with CUDA builds of torch), else stand-ins so modules holding
Triton kernels still import: ``HAVE_TRITON``, ``triton``, ``tl`` and ``jit``."""

from __future__ import annotations

try:
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except ImportError:  # triton is an optional extra (it ships with CUDA builds of torch)
    triton = tl = None
    HAVE_TRITON = False


def jit(fn):
    """``triton.jit``, or the plain function where triton is missing (the module still imports)."""
    return triton.jit(fn) if HAVE_TRITON else fn
