"""numba kernels of the parallel spiking neuron's elementwise part (``neurons.psn``): firing and the surrogate
gradient on the membrane ``h [T, N]`` that one matmul produced, parallel over blocks of neurons::

    s[t, n] = H(h[t, n] - b[t])                      (psn_fire)
    g_h[t, n] = g_s[t, n] sg(h[t, n] - b[t])         (psn_surrogate_grad; the caller sums -g_h over n for g_b)

``sg`` is ``fused_kernels._row_surrogate`` (codes and constants from ``fused_constants.surrogate_constants``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.fused_constants import KERNEL_OPTIONS
from deepspike.neurons.fused_kernels import BLOCK, _row_surrogate, _spike

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)


@nb.njit(**KERNEL_OPTIONS)
def _row_fire(h, bt, s):
    """``s = H(h - bt)`` for 1-D rows (a serial loop LLVM vectorises; see ``fused_kernels``)."""
    for n in range(h.shape[0]):
        s[n] = _spike(h[n] - bt)


@nb.njit(**KERNEL_OPTIONS)
def _row_scale(gs, sg, gh):
    """``gh = gs * sg`` for 1-D rows."""
    for n in range(gs.shape[0]):
        gh[n] = gs[n] * sg[n]


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def psn_fire(h, b, s):
    """``s [T, N] = H(h - b[t])`` for ``h [T, N]``, thresholds ``b [T]``."""
    steps, n_cols = h.shape
    for blk in nb.prange((n_cols + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n_cols)
        for t in range(steps):
            _row_fire(h[t, lo:hi], b[t], s[t, lo:hi])


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def psn_surrogate_grad(h, b, gs, gh, code, p1, p2):
    """``gh [T, N] = gs sg(h - b[t])`` (``gh`` may be ``h``: each row is read before it is written)."""
    steps, n_cols = h.shape
    for blk in nb.prange((n_cols + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n_cols)
        sg = np.empty(hi - lo, dtype=h.dtype)
        for t in range(steps):
            _row_surrogate(h[t, lo:hi], b[t], code, p1, p2, sg)
            _row_scale(gs[t, lo:hi], sg, gh[t, lo:hi])
