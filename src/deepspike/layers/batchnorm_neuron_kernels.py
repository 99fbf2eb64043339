"""numba kernels of ``layers.batchnorm_neuron``'s one-pass path: batch-norm and the LIF/PLIF neuron after it on
dense CPU steps (contiguous or channels-last), with batch-norm's statistics, its affine map, the spikes' ``uint8``
codes and batch-norm's backward reductions computed inside the neuron kernels' blocks instead of in separate passes
over ``[T, B, ...]``.

Arrays: ``x [T, N]`` is the batch-norm's input (one row per time step, each step a contiguous ``[B, C, P]`` block:
column ``j`` belongs to channel ``(j // P) % C``, ``P`` = H W, the ``plane``; a channels-last step ``[B, H, W, C]``
is the case ``P = 1``: column ``j`` is channel ``j % C``); ``alpha``, ``shift``: ``[C]``. The
neuron rows are ``fused_learnable_kernels``' (decay ``k`` and threshold ``th`` as ``[N]`` or ``[1]``), so the
update, the surrogate and the decay/threshold gradients are the fused learnable kernels' own::

    stats:     S1[c] = sum x,  S2[c] = sum x^2 over the T B P values of channel c (float64, per plane)
    forward:   y_t = alpha_c x_t + shift_c  (a block-local row),  s_t = neuron(y_t),  codes_t = uint8(s_t)
    backward:  y, h recomputed as in forward;  dL/dy_t from the neuron's backward row;  per block and channel
               G1[b, c] = sum dL/dy,  G2[b, c] = sum dL/dy x  (over the block's columns of channel c and over t)
    input:     dL/dx = alpha_c dL/dy + a_c x + b_c  (per-channel a, b from G1, G2: ``batchnorm_neuron_onepass``)

Blocks of ``fused_kernels.block_width(T)`` columns (whole pooling bands with a fused pooling) run in parallel
(``prange``); the per-channel constants are written once per block into rows (``_channel_row``), so every
per-step loop is a vectorised row loop, as in the neuron kernels. With a fused pooling the forward writes the
block's pooled spikes instead of its spikes and codes, and the backward reads the pooled gradient spread over the
windows (``fused_kernels.lif_forward``/``lif_backward``'s pooling rows).

``x``, ``s``, ``gs``, ``gy`` and ``gx`` may be bfloat16 bits (``uint16``): each row is read through ``load_row`` and
written through ``staging_row``/``commit_row`` (``neurons.bfloat16_rows``), and the block-local rows are in
``alpha``'s dtype (the computation's: float32 for bfloat16). Imported lazily (numba is slow to load).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.bfloat16_rows import commit_row, load_row, staging_row
from deepspike.neurons.fused_constants import KERNEL_OPTIONS
from deepspike.neurons.fused_constants import ONE as _ONE
from deepspike.neurons.fused_constants import ZERO as _ZERO
from deepspike.neurons.fused_kernels import (
    _overlap,
    _pool_constants,
    _read_row,
    _row_add,
    _spread_pooled,
    _write_pooled,
    block_layout,
)
from deepspike.neurons.fused_kernels import most_blocks as most_blocks  # re-exported: the rows of g1, g2 buffers
from deepspike.neurons.fused_learnable_kernels import (
    _param_row,
    _row_backward,
    _row_forward,
    _store_grad,
    blocks_of,
    reverse_step_rows,
)

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)


@nb.njit(fastmath={"reassoc"}, **KERNEL_OPTIONS)
def _plane_sums(x):
    """``(sum x, sum x^2)`` of a float32 row in float64 (reassociated: vectorised, in a fixed order)."""
    s1 = 0.0
    s2 = 0.0
    for n in range(x.shape[0]):
        v = np.float64(x[n])
        s1 += v
        s2 += v * v
    return s1, s2


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def channel_stats(x, plane, n_ch, s1, s2):
    """Per-channel ``S1 = sum x``, ``S2 = sum x^2`` (module docstring) of ``x [M, C, P]`` given flat ``[M C P]``
    into float64 ``s1, s2 [C]``: one pass, parallel over channels, each plane summed in float64."""
    m = x.shape[0] // (n_ch * plane)
    for c in nb.prange(n_ch):
        a1 = 0.0
        a2 = 0.0
        buf = np.empty(plane, dtype=np.float32)  # decoded bfloat16 values (unused for float x)
        for i in range(m):
            lo = (i * n_ch + c) * plane
            p1, p2 = _plane_sums(load_row(x[lo:lo + plane], buf))
            a1 += p1
            a2 += p2
        s1[c] = a1
        s2[c] = a2


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def channel_stats_interleaved(x, n_ch, s1, s2):
    """``channel_stats`` for interleaved channels (``x`` flat ``[M, C]``: channels-last steps, or ``[B, C]``):
    parallel over bands of rows, each band's per-channel float64 sums in a row of its own, then summed in order."""
    rows = x.shape[0] // n_ch
    bands = min(rows, 64)
    p1 = np.zeros((bands, n_ch))
    p2 = np.zeros((bands, n_ch))
    for k in nb.prange(bands):
        buf = np.empty(n_ch, dtype=np.float32)  # decoded bfloat16 values (unused for float x)
        for r in range(k * rows // bands, (k + 1) * rows // bands):
            row = load_row(x[r * n_ch:(r + 1) * n_ch], buf)
            for c in range(n_ch):  # vectorised over channels
                v = np.float64(row[c])
                p1[k, c] += v
                p2[k, c] += v * v
    for c in range(n_ch):
        s1[c] = p1[:, c].sum()
        s2[c] = p2[:, c].sum()


@nb.njit(**KERNEL_OPTIONS)
def _channel_row(p, lo, hi, plane, n_ch, out):
    """``out[n] = p[channel of column lo + n]`` for the block ``[lo, hi)`` (``p [C]``), plane by plane."""
    if plane == 1:  # interleaved channels (channels-last, or [B, C] steps)
        c = lo % n_ch
        for n in range(hi - lo):
            out[n] = p[c]
            c = c + 1 if c + 1 < n_ch else 0
        return
    j = lo
    while j < hi:
        end = min(hi, (j // plane + 1) * plane)
        value = p[(j // plane) % n_ch]
        for n in range(j - lo, end - lo):
            out[n] = value
        j = end


@nb.njit(fastmath={"reassoc"}, **KERNEL_OPTIONS)
def _channel_add(row, lo, plane, n_ch, out):
    """``out[c] += sum of row's columns of channel c`` (``row`` the block starting at column ``lo``; float64,
    reassociated: vectorised, in a fixed order)."""
    if plane == 1:  # interleaved channels
        c = lo % n_ch
        for n in range(row.shape[0]):
            out[c] += np.float64(row[n])
            c = c + 1 if c + 1 < n_ch else 0
        return
    j = lo
    hi = lo + row.shape[0]
    while j < hi:
        end = min(hi, (j // plane + 1) * plane)
        total = 0.0
        for n in range(j - lo, end - lo):
            total += np.float64(row[n])
        out[(j // plane) % n_ch] += total
        j = end


@nb.njit(**KERNEL_OPTIONS)
def _block_rows(alpha, shift, k, th, lo, hi, plane):
    """A block's rows of the per-channel ``alpha``, ``shift`` and of the neuron's ``k``, ``th`` (``[N]`` or ``[1]``)
    for the columns ``[lo, hi)``: ``(a_row, b_row, kb, tb)``."""
    rows = np.empty((4, hi - lo), dtype=alpha.dtype)
    _channel_row(alpha, lo, hi, plane, alpha.shape[0], rows[0])
    _channel_row(shift, lo, hi, plane, alpha.shape[0], rows[1])
    _param_row(k, lo, hi, rows[2])
    _param_row(th, lo, hi, rows[3])
    return rows[0], rows[1], rows[2], rows[3]


@nb.njit(**KERNEL_OPTIONS)
def _row_affine(x, a, b, y):
    """``y = x a + b`` elementwise: the one formula of ``y`` in forward and in backward's recomputation."""
    for n in range(x.shape[0]):
        y[n] = x[n] * a[n] + b[n]


@nb.njit(**KERNEL_OPTIONS)
def _row_codes(s, codes):
    """``codes = uint8(s)`` for spikes ``s``; returns whether every value was exactly 0 or 1 (else a NaN input)."""
    odd = 0
    for n in range(s.shape[0]):
        v = s[n]
        codes[n] = np.uint8(v == _ONE)
        odd |= np.int32(v != _ONE) & np.int32(v != _ZERO)
    return odd == 0


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def bn_neuron_forward(x, alpha, shift, plane, v, s, codes, k, th, reset, decay_input, pool):
    """Forward over T from the membrane ``v [N]`` (in; ``v_T`` out): ``s [T, N]`` spikes and ``codes [T, N]``
    (uint8) of the neuron on ``y = alpha x + shift`` (module docstring); ``x [T, N]``, or ``[1, N]``: the same input
    at every step (direct encoding). ``pool``: ``fused_kernels.lif_forward``'s; when it pools, ``s`` is the pooled
    map ``[T, N / (kh kw)]`` and ``codes`` are not written. Returns whether every code is exact."""
    steps, n_cols = s.shape[0], x.shape[1]
    const = x.shape[0] == 1
    pooled, relayout, _, area, _ = _pool_constants(pool)
    cols, count = block_layout(n_cols, pool, steps)
    exact = np.ones(count, dtype=np.bool_)
    for b in nb.prange(count):
        lo = b * cols
        hi = min(lo + cols, n_cols)
        width, olo, ohi = hi - lo, lo // area, hi // area
        a_row, b_row, kb, tb = _block_rows(alpha, shift, k, th, lo, hi, plane)
        y, scratch = np.empty(width, dtype=alpha.dtype), np.empty(width, dtype=alpha.dtype)
        x_buf, s_buf = np.empty(width, dtype=alpha.dtype), np.empty(width, dtype=alpha.dtype)  # bfloat16 rows
        acc = np.empty(pool[2] * pool[3] if pooled else 0, dtype=alpha.dtype)
        rows = np.empty(ohi - olo if relayout else 0, dtype=s.dtype)
        pooled_buf = np.empty(ohi - olo if pooled else 0, dtype=alpha.dtype)  # bfloat16 pooled rows
        for t in range(steps):
            _row_affine(load_row(x[0 if const else t, lo:hi], x_buf), a_row, b_row, y)
            s_row = s_buf if pooled else staging_row(s[t, lo:hi], s_buf)
            _row_forward(y, v[lo:hi], s_row, scratch, kb, tb, reset, decay_input)
            if pooled:
                _write_pooled(s_row, s[t], olo, ohi, pool, acc, rows, pooled_buf)
                continue
            if not _row_codes(s_row, codes[t, lo:hi]):
                exact[b] = False
            commit_row(s_row, s[t, lo:hi])
    return exact.all()


@nb.njit(**KERNEL_OPTIONS)
def _row_moments(g, x, acc_g, acc_gx):
    """``acc_g += g``, ``acc_gx += g x`` elementwise."""
    for n in range(g.shape[0]):
        acc_g[n] += g[n]
        acc_gx[n] += g[n] * x[n]


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def bn_neuron_backward(x, alpha, shift, plane, gs, gy, gk, gth, k, th, reset, detach, decay_input, code, p1, p2,
                       g1, g2, pool):
    """BPTT from rest (``v_0 = 0``, ``dL/dv_T = 0``): ``gy [T, N]`` = dL/dy for ``gs = dL/ds [T, N]`` (``x [T, N]``
    or ``[1, N]``, as the forward's; ``gs [T, N / (kh kw)]`` for a pooled forward, ``pool`` as its); ``gk``, ``gth``
    as ``fused_learnable_kernels.learnable_backward``'s (``[N]``, ``[n_blocks]`` or ``[0]``; not with ``pool``);
    ``g1, g2 [most_blocks, C]`` float64 zeros in, the blocks' per-channel ``sum dL/dy`` and ``sum dL/dy x`` (the
    first ``block_layout(N, pool, T)[1]`` rows; the rest stay zero)."""
    steps, n_cols, n_ch = gs.shape[0], x.shape[1], alpha.shape[0]
    const = x.shape[0] == 1
    want_th = gth.shape[0] > 0
    pooled, relayout, _, area, _ = _pool_constants(pool)
    cols, count = block_layout(n_cols, pool, steps)
    for b in nb.prange(count):
        lo = b * cols
        hi = min(lo + cols, n_cols)
        width, olo, ohi = hi - lo, lo // area, hi // area
        a_row, b_row, kb, tb = _block_rows(alpha, shift, k, th, lo, hi, plane)
        dt = alpha.dtype  # the computation's (float32 for bfloat16 bits)
        rows = np.empty(ohi - olo if relayout else 0, dtype=gs.dtype)
        pooled_buf = np.empty(ohi - olo if pooled else 0, dtype=dt)  # bfloat16 pooled rows
        spread = np.empty(width if pooled else 0, dtype=dt)
        block_y, block_h = np.empty((steps, width), dtype=dt), np.empty((steps, width), dtype=dt)
        sg, v_prev = np.empty(width, dtype=dt), np.empty(width, dtype=dt)
        v, gv = np.zeros(width, dtype=dt), np.zeros(width, dtype=dt)
        gkb, gthb = np.zeros(width, dtype=dt), np.zeros(width if want_th else 0, dtype=dt)
        acc_g, acc_gx = np.zeros(width, dtype=dt), np.zeros(width, dtype=dt)
        x_buf, g_buf, gy_buf = np.empty(width, dtype=dt), np.empty(width, dtype=dt), np.empty(width, dtype=dt)
        for t in range(steps):
            _row_affine(load_row(x[0 if const else t, lo:hi], x_buf), a_row, b_row, block_y[t])
            _row_forward(block_y[t], v, sg, block_h[t], kb, tb, reset, decay_input)  # sg: scratch
        v[:] = _ZERO  # v_0, for reverse_step_rows
        for t in range(steps - 1, -1, -1):
            h_row = reverse_step_rows(block_h, t, v, tb, reset, code, p1, p2, v_prev, sg)
            if pooled:
                _spread_pooled(gs[t], olo, ohi, pool, rows, pooled_buf, spread)
            gs_row = spread if pooled else load_row(gs[t, lo:hi], g_buf)
            gy_row = staging_row(gy[t, lo:hi], gy_buf)
            _row_backward(block_y[t], h_row, v_prev, gs_row, gv, gy_row, gkb, gthb, sg, kb, tb, reset, detach,
                          decay_input, want_th)
            commit_row(gy_row, gy[t, lo:hi])
            # the sums of dL/dy as stored (bfloat16: rounded), so that dL/dx's channel sums stay consistent with it
            _row_moments(load_row(gy[t, lo:hi], gy_buf), load_row(x[0 if const else t, lo:hi], x_buf), acc_g, acc_gx)
        _store_grad(gkb, gk, lo, hi, b, n_cols)
        _store_grad(gthb, gth, lo, hi, b, n_cols)
        _channel_add(acc_g, lo, plane, n_ch, g1[b])
        _channel_add(acc_gx, lo, plane, n_ch, g2[b])


@nb.njit(**KERNEL_OPTIONS)
def _row_input_grad(g, x, a, c, d, out):
    """``out = g a + x c + d`` elementwise."""
    for n in range(g.shape[0]):
        out[n] = g[n] * a[n] + x[n] * c[n] + d[n]


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def bn_input_grad(gy, x, alpha, a, b, plane, gx):
    """``gx = alpha_c gy + a_c x + b_c`` over ``[T, N]`` rows (module docstring); ``gx`` may be ``gy``. For a
    repeated input (``x``, ``gx`` ``[1, N]``) the gradient of the one row: ``gx = alpha_c sum_t gy_t + a_c x + b_c``
    (the caller passes ``a`` and ``b`` times T)."""
    steps, n_cols, n_ch = gy.shape[0], x.shape[1], alpha.shape[0]
    repeated = x.shape[0] == 1 and steps > 1
    staged = _overlap(gy, gx)  # written over gy: read it from a block-local row (vectorised, ``fused_kernels``)
    cols, count = blocks_of(n_cols, steps)
    for blk in nb.prange(count):
        lo = blk * cols
        hi = min(lo + cols, n_cols)
        width = hi - lo
        dt = alpha.dtype  # the computation's (float32 for bfloat16 bits)
        a_row, c_row, d_row = np.empty(width, dtype=dt), np.empty(width, dtype=dt), np.empty(width, dtype=dt)
        g_in, x_buf, out_buf = np.empty(width, dtype=dt), np.empty(width, dtype=dt), np.empty(width, dtype=dt)
        _channel_row(alpha, lo, hi, plane, n_ch, a_row)
        _channel_row(a, lo, hi, plane, n_ch, c_row)
        _channel_row(b, lo, hi, plane, n_ch, d_row)
        if repeated:
            acc = np.zeros(width, dtype=dt)
            for t in range(steps):
                _row_add(acc, load_row(gy[t, lo:hi], g_in))
            out = staging_row(gx[0, lo:hi], out_buf)
            _row_input_grad(acc, load_row(x[0, lo:hi], x_buf), a_row, c_row, d_row, out)
            commit_row(out, gx[0, lo:hi])
        else:
            for t in range(steps):
                g_row = _read_row(load_row(gy[t, lo:hi], g_in), g_in, staged)  # bfloat16: decoded into g_in, not copied
                out = staging_row(gx[t, lo:hi], out_buf)
                _row_input_grad(g_row, load_row(x[t, lo:hi], x_buf), a_row, c_row, d_row, out)
                commit_row(out, gx[t, lo:hi])
