"""numba kernels of the fused LIF update with per-neuron decay and threshold (PLIF, learnable threshold), whose
backward also returns the gradients of the decay and the threshold.

Both work on ``[T, N]`` float arrays (N = every neuron of every sample, in the step's memory order) with the
per-neuron decay ``k [N]`` and threshold ``th [N]`` (a per-layer or per-channel parameter expanded to one step by
the caller), and compute the update of ``neurons.learnable_dynamics`` in the same float operations::

    h_t = k v_{t-1} + c x_t  (c = 1 - k if decay_input else 1),  s_t = H(h_t - th),
    v_t = h_t (1 - s_t) | h_t - th s_t | h_t

Backward (BPTT, t = T..1, carried ``g_v = dL/dv_t``; ``r_t`` the spike inside the reset, ``sg`` the surrogate)::

    g_s  = dL/ds_t + [not detach_reset] g_v dv_t/dr_t         (dv/dr = -h_t | -th | 0)
    g_h  = sg(h_t - th) g_s + g_v dv_t/dh_t                   (dv/dh = 1 - s_t | 1 | 1)
    dL/dx_t = c g_h;   dL/dk += g_h (v_{t-1} - [decay_input] x_t);   g_v <- k g_h
    dL/dth += -sg(h_t - th) g_s - [reset subtract] g_v s_t

The decay and the threshold come per neuron (``[N]``, a per-channel parameter written out by the caller) or as one
value (``[1]``, a per-layer parameter), each block writing its own ``[block]`` rows of them (``_param_row``, in
cache); a gradient comes back per neuron (``[N]``) for a per-neuron parameter and as one partial sum per block
(``[n_blocks(N)]``, zeros past the kernel's blocks) for a one-value parameter, and a threshold gradient of length 0
is not computed (a fixed threshold, PLIF).

The forward kernel saves nothing: the backward kernel recomputes each block's ``h`` from ``x`` and ``v_0`` into a
``[T, block]`` scratch that stays in cache (the caller saves ``x`` instead of ``h``; same size), so ``v_{t-1}`` and
``x_t`` are both at hand for ``dL/dk``. Blocks of ``blocks_of(N, T)`` neurons run in parallel (numba ``prange``);
``dL/dk`` and ``dL/dth`` are accumulated per neuron in block-local rows and summed to the parameter's shape by the
caller.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.fused_constants import KERNEL_OPTIONS
from deepspike.neurons.fused_constants import ONE as _ONE
from deepspike.neurons.fused_constants import ZERO as _ZERO
from deepspike.neurons.fused_kernels import (
    BLOCK,
    _copy,
    _overlap,
    _read_row,
    _row_surrogate,
    _spike,
    block_width,
    blocks_covering,
)

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)


@nb.njit(**KERNEL_OPTIONS)
def _row_forward(x, v, s, h, k, th, reset, decay_input):
    """One time step of one block: rows ``x, v (in/out), s, h, k, th`` of equal length; ``s`` may be ``h``."""
    for n in range(x.shape[0]):
        kn = k[n]
        ht = kn * v[n] + ((_ONE - kn) * x[n] if decay_input else x[n])
        sp = _spike(ht - th[n])
        s[n] = sp
        h[n] = ht
        if reset == 0:
            v[n] = ht * (_ONE - sp)
        elif reset == 1:
            v[n] = ht - th[n] * sp
        else:
            v[n] = ht


@nb.njit(**KERNEL_OPTIONS)
def n_blocks(n_cols):
    """The rows of a per-block gradient buffer for ``n_cols`` neurons: the blocks of the narrowest width, ``BLOCK``
    (``fused_kernels.most_blocks``); a kernel over T steps fills the first ``blocks_of(n_cols, T)``, the rest stay
    zero."""
    return blocks_covering(n_cols, BLOCK)[1]


@nb.njit(**KERNEL_OPTIONS)
def blocks_of(n_cols, steps):
    """``(width, count)``: the columns per block and the parallel blocks of a kernel over ``steps`` time steps
    (``fused_kernels.block_width``)."""
    return blocks_covering(n_cols, block_width(steps))


@nb.njit(**KERNEL_OPTIONS)
def _param_row(p, lo, hi, out):
    """``out`` = the block ``[lo, hi)`` of a per-neuron parameter ``p [N]``, or its one value for ``p [1]``."""
    if p.shape[0] == 1:
        out[:] = p[0]
    else:
        _copy(p[lo:hi], out)


@nb.njit(**KERNEL_OPTIONS)
def _store_grad(acc, g, lo, hi, b, n_cols):
    """A block's accumulated gradient row ``acc``: into ``g[lo:hi]`` (per neuron, ``g [N = n_cols]``), or its sum
    into ``g[b]`` (per block, ``g [n_blocks]``); nothing for ``g [0]`` (not wanted)."""
    if g.shape[0] == 0:
        return
    if g.shape[0] == n_cols:
        _copy(acc, g[lo:hi])
    else:
        total = _ZERO
        for n in range(acc.shape[0]):
            total += acc[n]
        g[b] = total


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def learnable_forward(x, v, s, k, th, reset, decay_input):
    """Forward over T: ``x [T, N]`` (or ``[1, N]``: the same row at every step), ``v [N]`` initial membrane in and
    ``v_T`` out, spikes ``s [T, N]`` out (may be ``x`` itself); ``k, th``: ``[N]`` or ``[1]`` (module docstring);
    reset: a ``fused_constants.RESET_CODES`` value."""
    steps, n_cols = s.shape[0], v.shape[0]
    const = x.shape[0] == 1
    staged = _overlap(x, s)  # spikes written over x: read x from a block-local row (vectorised, ``fused_kernels``)
    cols, count = blocks_of(n_cols, steps)
    for b in nb.prange(count):
        lo = b * cols
        hi = min(lo + cols, n_cols)
        scratch = np.empty(hi - lo, dtype=s.dtype)
        x_in = np.empty(hi - lo if staged else 0, dtype=s.dtype)
        kb, tb = np.empty(hi - lo, dtype=s.dtype), np.empty(hi - lo, dtype=s.dtype)
        _param_row(k, lo, hi, kb)
        _param_row(th, lo, hi, tb)
        for t in range(steps):
            x_row = _read_row(x[0 if const else t, lo:hi], x_in, staged)
            _row_forward(x_row, v[lo:hi], s[t, lo:hi], scratch, kb, tb, reset, decay_input)


@nb.njit(**KERNEL_OPTIONS)
def _row_backward(x, h, v_prev, gs, gv, gx, gk, gth, sg, k, th, reset, detach, decay_input, want_th):
    """One reverse time step of one block (module docstring); ``gv`` in/out, ``gk, gth`` accumulated. ``gx`` may
    be ``x`` itself (each ``x[n]`` is read before ``gx[n]`` is written), though ``learnable_backward`` passes a
    block-local copy of ``x`` then, so that the loop stays vectorised."""
    for n in range(h.shape[0]):
        ht, tn, g = h[n], th[n], gv[n]
        sp = _spike(ht - tn)
        if reset == 0:
            dv_dr, dv_dh = -ht, _ONE - sp
        elif reset == 1:
            dv_dr, dv_dh = -tn, _ONE
        else:
            dv_dr, dv_dh = _ZERO, _ONE
        g_s = gs[n] if detach else gs[n] + g * dv_dr
        g_h = sg[n] * g_s + g * dv_dh
        if want_th:
            gth[n] += -sg[n] * g_s - (g * sp if reset == 1 else _ZERO)
        kn = k[n]
        gk[n] += g_h * (v_prev[n] - x[n] if decay_input else v_prev[n])  # x[n] read before gx[n] is written
        gx[n] = (_ONE - kn) * g_h if decay_input else g_h
        gv[n] = kn * g_h


@nb.njit(**KERNEL_OPTIONS)
def _row_reset(h, th, reset, v):
    """``v = reset(h, H(h - th))``: the post-reset membrane of a stored pre-reset row."""
    for n in range(h.shape[0]):
        sp = _spike(h[n] - th[n])
        v[n] = h[n] * (_ONE - sp) if reset == 0 else (h[n] - th[n] * sp if reset == 1 else h[n])


@nb.njit(**KERNEL_OPTIONS)
def reverse_step_rows(block_h, t, v0, th, reset, code, p1, p2, v_prev, sg):
    """The rows a reverse step ``t`` needs besides the gradients, from a block's recomputed ``block_h [T, width]``:
    ``v_prev = v_{t-1}`` (``v0`` at t = 0) and ``sg = sg(h_t - th)``, written in place; returns ``h_t``. ``u = h_t -
    th`` (per neuron, for the shared surrogate row function with th = 0) goes to ``v_prev`` first: a surrogate computed
    in place (``sg`` from ``sg``) would run LLVM's scalar loop (``fused_kernels`` docstring; measured 0.70 against
    0.08 ns per value on one core)."""
    h_row = block_h[t]
    for n in range(h_row.shape[0]):
        v_prev[n] = h_row[n] - th[n]
    _row_surrogate(v_prev, _ZERO, code, p1, p2, sg)
    if t == 0:
        _copy(v0, v_prev)
    else:
        _row_reset(block_h[t - 1], th, reset, v_prev)
    return h_row


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def learnable_backward(x, v0, gs, gv, gx, gk, gth, k, th, reset, detach, decay_input, code, p1, p2):
    """BPTT over T (module docstring). x: the forward input ``[T, N]`` or ``[1, N]``; v0: ``[N]`` initial
    membrane; gs: ``dL/ds [T, N]``; gv: ``[N]`` ``dL/dv_T`` in, ``dL/dv_0`` out; gx: ``dL/dx [T, N]`` out (may be
    ``x`` itself: a block's rows of ``x`` are read before that block's ``dL/dx`` is written);
    gk, gth: ``dL/dk``, ``dL/dth`` out, ``[N]`` per neuron or ``[n_blocks]`` per-block sums (module docstring;
    ``gth [0]``: not computed); k, th: ``[N]`` or ``[1]``; code, p1, p2: the surrogate
    (``fused_constants.surrogate_constants``)."""
    steps, n_cols = gs.shape[0], gv.shape[0]
    const = x.shape[0] == 1
    staged = _overlap(x, gx)  # dL/dx written over x: read x from a block-local row (vectorised, ``fused_kernels``)
    want_th = gth.shape[0] > 0
    cols, count = blocks_of(n_cols, steps)
    for b in nb.prange(count):
        lo = b * cols
        hi = min(lo + cols, n_cols)
        width = hi - lo
        x_in = np.empty(width if staged else 0, dtype=gv.dtype)
        kb, tb = np.empty(width, dtype=gv.dtype), np.empty(width, dtype=gv.dtype)
        _param_row(k, lo, hi, kb)
        _param_row(th, lo, hi, tb)
        gkb, gthb = np.zeros(width, dtype=gv.dtype), np.zeros(width if want_th else 0, dtype=gv.dtype)
        block_h = np.empty((steps, width), dtype=gv.dtype)
        sg = np.empty(width, dtype=gv.dtype)
        v_prev = np.empty(width, dtype=gv.dtype)
        v = v0[lo:hi].copy()
        for t in range(steps):
            _row_forward(x[0 if const else t, lo:hi], v, sg, block_h[t], kb, tb, reset, decay_input)  # sg: scratch
        for t in range(steps - 1, -1, -1):
            h_row = reverse_step_rows(block_h, t, v0[lo:hi], tb, reset, code, p1, p2, v_prev, sg)
            x_row = _read_row(x[0 if const else t, lo:hi], x_in, staged)
            _row_backward(x_row, h_row, v_prev, gs[t, lo:hi], gv[lo:hi], gx[t, lo:hi], gkb, gthb, sg, kb, tb, reset,
                          detach, decay_input, want_th)
        _store_grad(gkb, gk, lo, hi, b, n_cols)
        _store_grad(gthb, gth, lo, hi, b, n_cols)
