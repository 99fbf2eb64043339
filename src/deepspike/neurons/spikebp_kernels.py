"""numba kernels of lee2020's leak-corrected LIF (``layers.spikebp_lif``): the time loop in one call.

Both work on contiguous ``[T, N]`` float32 arrays (N = every neuron of every sample), split into blocks of
``BLOCK`` columns run in parallel (``prange``); per step a serial row function runs on contiguous slices
so that LLVM vectorises it. They compute exactly the torch reference of ``spikebp_lif`` in the same
float32 operations (same spikes bit for bit)::

    forward:  h_t = leak v_{t-1} + x_t,  s_t = 1[h_t > V_th],  v_t = h_t (1 - s_t)      (v_0 = 0)
              (s_t = NaN where h_t is NaN; the uint8 copy holds 0 there)
    backward ("code" derivative, reverse scan):
              c_t = s_t ? a' g_t : c_{t+1},   dL/dx_t = c_t   (c_{T+1} = 0; a' per neuron, the caller's)

The forward writes float32 spikes (the layer's output) and a uint8 copy (what backward keeps: a quarter
of the memory). The per-neuron derivative ``a'`` needs the whole spike train, so it is computed after the
forward from the uint8 copy (``spikebp_lif.leak_corrected_derivative``), exactly as the reference does.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.fused_constants import KERNEL_OPTIONS
from deepspike.neurons.fused_constants import ONE as _ONE
from deepspike.neurons.fused_constants import ZERO as _ZERO

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)

BLOCK = 1024  # columns per parallel work item


@nb.njit(**KERNEL_OPTIONS)
def _row_forward(x, v, s, mask, leak, th):
    """One step of one block: ``x`` in, ``v`` in/out, ``s`` (float32) and ``mask`` (uint8) out."""
    for n in range(x.shape[0]):
        h = x[n] + leak * v[n]  # two roundings, as the torch reference
        fired = h > th
        s[n] = _ONE if fired else (_ZERO if h == h else h)  # NaN for a NaN membrane
        mask[n] = 1 if fired else 0
        v[n] = _ZERO if fired else h


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def forward(x, s, mask, leak, th):
    """x ``[T, N]`` currents; s ``[T, N]`` float32 spikes and mask ``[T, N]`` uint8 spikes out."""
    steps, n_cols = x.shape
    for b in nb.prange((n_cols + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n_cols)
        v = np.zeros(hi - lo, dtype=x.dtype)
        for t in range(steps):
            _row_forward(x[t, lo:hi], v, s[t, lo:hi], mask[t, lo:hi], leak, th)


@nb.njit(**KERNEL_OPTIONS)
def _row_backward(mask, g, scale, carry, out):
    """One reverse step of one block: ``carry = mask ? scale g : carry``; ``out = carry``."""
    for n in range(g.shape[0]):
        if mask[n]:
            carry[n] = g[n] * scale[n]
        out[n] = carry[n]


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def backward_code(mask, grad, scale, out):
    """mask ``[T, N]`` uint8 spikes, grad ``[T, N]`` dL/ds, scale ``[N]`` a'; out ``[T, N]`` dL/dx."""
    steps, n_cols = grad.shape
    for b in nb.prange((n_cols + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n_cols)
        carry = np.zeros(hi - lo, dtype=grad.dtype)
        for t in range(steps - 1, -1, -1):
            _row_backward(mask[t, lo:hi], grad[t, lo:hi], scale[lo:hi], carry, out[t, lo:hi])
