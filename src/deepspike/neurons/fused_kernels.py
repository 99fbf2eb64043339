"""numba kernels of the fused IF/LIF update: the whole time loop in one call, parallel over neurons.

Both kernels work on contiguous ``[T, N]`` float32 arrays (N = every neuron of every sample) and
compute exactly the reference update of ``neurons.dynamics`` in the same float32 operations, so the
spikes agree bit for bit::

    h_t = k v_{t-1} + x_t,   s_t = 1[h_t - th >= 0],   v_t = h_t (1 - s_t) | h_t - th s_t | h_t

(``s_t = NaN`` where ``h_t`` is NaN, as ``surrogate.heaviside``: a NaN input shows in the spikes.)

``lif_backward`` is BPTT through those equations, walking t = T..1 with the carried ``g_v = dL/dv_t``::

    g_s   = dL/ds_t + [not detach_reset] g_v dv_t/dr_t      (dv/dr = -h_t | -th | 0)
    g_h   = sg(h_t - th) g_s + g_v dv_t/dh_t + dL/dh_t      (dv/dh = 1 - s_t | 1 | 1)
    dL/dx_t = g_h,    g_v <- kb g_h                          (kb = k, or 1 when leak_grad is False)

with ``sg`` the surrogate derivative chosen by ``fused_constants.SURROGATE_CODES``. The neurons are split into
blocks of ``block_width(T)`` contiguous columns (``BLOCK`` to ``4 BLOCK``: wider for few time steps); each block
runs its time loop on one thread (numba ``prange``). Per time step a block calls a serial row function (``_row_*``)
on contiguous 1-D slices with every mode switch hoisted out of its loop: LLVM vectorises those loops, while loops
written inline in a ``prange`` body stay scalar (measured: about 2x slower).

Two options remove the largest tensors of a conv layer: with ``pool`` the forward kernel average-pools
each step's spikes inside the block (blocks are whole pooling bands) and writes only the pooled map, and
the backward kernel spreads the pooled gradient over the windows itself; with an ``h`` of zero rows the
backward kernel recomputes each block's ``h`` from the forward inputs instead of reading a saved
``[T, N]`` membrane.

An output may share the memory of an input (``s`` or ``h`` written over ``x`` in forward, ``dL/dx`` over ``h``
in backward: ``fused``'s in-place modes). LLVM vectorises a row loop behind a run-time check that its arrays do not
overlap, and runs the scalar loop when they do (measured: an in-place forward 4x slower, an in-place backward 1.35x);
so a kernel whose output overlaps an input (``_overlap``) first copies each block's input row into a block-local
row (``_copy``, from L1) and reads it from there: the values are the same, the loops stay vectorised.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from deepspike.core.numba_cache import track_imported_sources
from deepspike.neurons.bfloat16_rows import commit_row, load_row, staging_row
from deepspike.neurons.fused_constants import KERNEL_OPTIONS
from deepspike.neurons.fused_constants import ONE as _ONE
from deepspike.neurons.fused_constants import ZERO as _ZERO

track_imported_sources()  # numba caches go stale with any imported deepspike module (core.numba_cache)

BLOCK = 1024  # the narrowest block: columns per parallel work item, 4 KiB of float32 per time step
BLOCK_VALUES = 32 * BLOCK  # a block widens beyond BLOCK columns while its T x columns stay within this


@nb.njit(**KERNEL_OPTIONS)
def _spike(u):
    """``H(u)``: 1 for ``u >= 0``, 0 below, NaN for NaN (``surrogate.heaviside``); a select, vectorised."""
    return _ONE if u >= _ZERO else (_ZERO if u == u else u)


@nb.njit(**KERNEL_OPTIONS)
def _overlap(a, b):
    """Whether arrays ``a`` and ``b`` (each one dense block of memory) share any byte."""
    a0, b0 = a.ctypes.data, b.ctypes.data
    return a0 < b0 + b.nbytes and b0 < a0 + a.nbytes


@nb.njit(**KERNEL_OPTIONS)
def _copy(src, dst):
    """``dst[:] = src`` for 1-D rows (a vectorised loop)."""
    for n in range(src.shape[0]):
        dst[n] = src[n]


@nb.njit(**KERNEL_OPTIONS)
def _read_row(row, local, staged):
    """The row a kernel reads: ``row`` itself, or, when ``staged`` (its output overlaps its input), ``row`` copied
    into the block-local ``local`` first (no copy when ``row`` already is ``local``: a decoded bfloat16 row)."""
    if staged and row.ctypes.data != local.ctypes.data:
        _copy(row, local)
        return local
    return row


@nb.njit(**KERNEL_OPTIONS)
def _row_forward(x, v, s, h, k, th, reset):
    """One time step of one block: 1-D contiguous rows ``x, v (in/out), s, h`` of equal length."""
    if reset == 0:
        for n in range(x.shape[0]):
            ht = k * v[n] + x[n]
            sp = _spike(ht - th)
            s[n] = sp
            h[n] = ht
            v[n] = ht * (_ONE - sp)
    elif reset == 1:
        for n in range(x.shape[0]):
            ht = k * v[n] + x[n]
            sp = _spike(ht - th)
            s[n] = sp
            h[n] = ht
            v[n] = ht - th * sp
    else:
        for n in range(x.shape[0]):
            ht = k * v[n] + x[n]
            s[n] = _spike(ht - th)
            h[n] = ht
            v[n] = ht


@nb.njit(**KERNEL_OPTIONS)
def _pool_row(s, out, acc, kh, kw, w, e, div):
    """Window means of one step's spikes: ``s`` viewed as ``[bands, kh, W, E]`` -> ``out`` ``[bands, W/kw, E]``,
    ``out = (sum of the kh x kw window) / div``: per band the kh rows are added into ``acc`` (``W * E``
    scratch; contiguous, vectorised), then each window's kw columns. Spikes are 0/1, so every order of the
    additions gives the same exact sum: the result is bit for bit ATen's average pooling."""
    wo_n = w // kw
    row = wo_n * e
    we = w * e
    for b in range(out.shape[0] // row):
        src0 = b * kh * we
        dst0 = b * row
        for q in range(we):
            acc[q] = s[src0 + q]
        for i in range(1, kh):
            off = src0 + i * we
            for q in range(we):
                acc[q] += s[off + q]
        if e == 1:
            for wo in range(wo_n):
                tot = acc[wo * kw]
                for j in range(1, kw):
                    tot += acc[wo * kw + j]
                out[dst0 + wo] = tot / div
        else:
            for wo in range(wo_n):
                base = wo * kw * e
                for c in range(e):
                    tot = acc[base + c]
                    for j in range(1, kw):
                        tot += acc[base + j * e + c]
                    out[dst0 + wo * e + c] = tot / div


@nb.njit(**KERNEL_OPTIONS)
def _unpool_row(g, out, kh, kw, w, e, div):
    """The gradient of ``_pool_row``: every pixel of a window gets its window's ``g / div`` (bit for bit
    ATen's ``avg_pool2d_backward`` for tiling windows); ``g`` ``[bands, W/kw, E]`` -> ``out`` ``[bands, kh, W, E]``.
    The first row of each band is written window by window, the other kh - 1 rows are copies of it."""
    wo_n = w // kw
    row = wo_n * e
    we = w * e
    for b in range(g.shape[0] // row):
        src0 = b * row
        dst0 = b * kh * we
        if e == 1:
            for wo in range(wo_n):
                v = g[src0 + wo] / div
                for j in range(kw):
                    out[dst0 + wo * kw + j] = v
        else:
            for wo in range(wo_n):
                for j in range(kw):
                    for c in range(e):
                        out[dst0 + (wo * kw + j) * e + c] = g[src0 + wo * e + c] / div
        for i in range(1, kh):
            off = dst0 + i * we
            for q in range(we):
                out[off + q] = out[dst0 + q]


@nb.njit(**KERNEL_OPTIONS)
def _to_channels_last(rows, step, first, wo_n, ho_n, c):
    """Scatter pooled rows ``[bands, Wo]`` of a contiguous-order step (band = (sample, channel, output row),
    starting at band ``first``) to their places in one channels-last step ``[B, Ho, Wo, C]`` (flat)."""
    for k in range(rows.shape[0] // wo_n):
        m, ho = divmod(first + k, ho_n)
        b, ch = divmod(m, c)
        base = (b * ho_n + ho) * wo_n * c + ch
        for wo in range(wo_n):
            step[base + wo * c] = rows[k * wo_n + wo]


@nb.njit(**KERNEL_OPTIONS)
def _from_channels_last(step, rows, first, wo_n, ho_n, c):
    """The inverse of ``_to_channels_last``: gather the rows ``[bands, Wo]`` from a channels-last step."""
    for k in range(rows.shape[0] // wo_n):
        m, ho = divmod(first + k, ho_n)
        b, ch = divmod(m, c)
        base = (b * ho_n + ho) * wo_n * c + ch
        for wo in range(wo_n):
            rows[k * wo_n + wo] = step[base + wo * c]


@nb.njit(**KERNEL_OPTIONS)
def block_width(steps):
    """Columns per block for a kernel over ``steps`` time steps: ``BLOCK`` widened, up to ``4 BLOCK``, while
    ``steps x width`` stays within ``BLOCK_VALUES`` (a ``[T, width]`` block-local array within 128 KiB of float32,
    in L2). Each block pays a fixed setup (its scratch rows) and each of its rows a fixed start, spread over
    ``steps x width`` values: at T = 4, blocks of ``4 BLOCK`` columns run the one-pass batch-norm + LIF kernels
    10-20% faster than blocks of ``BLOCK`` (session 21, ``benchmarks/RESULTS.md``); at T >= 32 the width is
    ``BLOCK``."""
    return BLOCK * min(4, max(1, BLOCK_VALUES // (BLOCK * max(steps, 1))))


@nb.njit(**KERNEL_OPTIONS)
def _block_columns(width, pool):
    """Columns per parallel block: ``width``, or as many whole pooling bands (``kh * W * E`` columns, ``pool`` =
    ``(kh, kw, W, E, ...)``; ``kh = 0`` means no pooling) as fit in ``width``, at least one."""
    if pool[0] == 0:
        return width
    band = pool[0] * pool[2] * pool[3]
    return max(1, width // band) * band


@nb.njit(**KERNEL_OPTIONS)
def blocks_covering(n_cols, cols):
    """``(cols, count)``: blocks of ``cols`` columns and how many cover ``n_cols`` (the last one partial)."""
    return cols, (n_cols + cols - 1) // cols


@nb.njit(**KERNEL_OPTIONS)
def block_layout(n_cols, pool, steps):
    """``(cols, count)`` of a kernel over ``steps`` time steps: ``_block_columns(block_width(steps), pool)`` columns
    per block and the ``prange`` count of blocks that cover ``n_cols``."""
    return blocks_covering(n_cols, _block_columns(block_width(steps), pool))


@nb.njit(**KERNEL_OPTIONS)
def most_blocks(n_cols, pool):
    """The most blocks any number of time steps gives (those of the narrowest width, ``BLOCK``): the rows of the
    callers' per-block buffers, of which a kernel fills the first ``block_layout(n_cols, pool, T)[1]``; the rest
    stay as the caller set them (zeros, for sums)."""
    return blocks_covering(n_cols, _block_columns(BLOCK, pool))[1]


@nb.njit(**KERNEL_OPTIONS)
def _pool_constants(pool):
    """``(pooled, relayout, div, area, wo_n)`` of the kernels' ``pool`` argument: whether it pools, whether
    the pooled map is written channels-last, the window size ``kh kw`` as float32 and int (1 without
    pooling: output columns = input columns / area), and the pooled width ``W / kw``."""
    pooled = pool[0] > 0
    area = pool[0] * pool[1] if pooled else 1
    return pooled, pooled and pool[5] > 0, np.float32(area), area, pool[2] // pool[1] if pooled else 1


@nb.njit(**KERNEL_OPTIONS)
def _write_pooled(spikes, s_step, olo, ohi, pool, acc, rows, pooled_buf):
    """A block's tiling average pooling of its spike row ``spikes`` into the pooled step ``s_step`` (flat; its
    columns ``[olo, ohi)``, or scattered channels-last: ``lif_forward``'s ``pool``); ``rows``: a ``[ohi - olo]`` row
    of ``s_step``'s dtype, used for the scatter; ``pooled_buf``: a float row of ``ohi - olo`` where ``s_step`` holds
    bfloat16 bits (``neurons.bfloat16_rows``), unused otherwise."""
    _, relayout, div, _, wo_n = _pool_constants(pool)
    if relayout:
        out = staging_row(rows, pooled_buf)
        _pool_row(spikes, out, acc, pool[0], pool[1], pool[2], pool[3], div)
        commit_row(out, rows)
        _to_channels_last(rows, s_step, olo // wo_n, wo_n, pool[4], pool[5])
    else:
        direct = staging_row(s_step[olo:ohi], pooled_buf)
        _pool_row(spikes, direct, acc, pool[0], pool[1], pool[2], pool[3], div)
        commit_row(direct, s_step[olo:ohi])


@nb.njit(**KERNEL_OPTIONS)
def _spread_pooled(gs_step, olo, ohi, pool, rows, pooled_buf, spread):
    """``spread`` = the gradient of ``_write_pooled``: the block's columns of the pooled gradient ``gs_step`` (flat,
    or gathered from channels-last into ``rows``) spread over their windows (``_unpool_row``); ``pooled_buf`` as
    ``_write_pooled``'s."""
    _, relayout, div, _, wo_n = _pool_constants(pool)
    if relayout:
        _from_channels_last(gs_step, rows, olo // wo_n, wo_n, pool[4], pool[5])
        _unpool_row(load_row(rows, pooled_buf), spread, pool[0], pool[1], pool[2], pool[3], div)
    else:
        _unpool_row(load_row(gs_step[olo:ohi], pooled_buf), spread, pool[0], pool[1], pool[2], pool[3], div)


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def lif_forward(x, v, s, h, k, th, reset, store_h, pool):
    """Forward over T in one call.

    x: input currents ``[T, N]``, or ``[1, N]`` for the same currents at every step (a time-invariant input, e.g.
    direct encoding: row 0 is read at every t); v: ``[N]`` initial membrane in, final post-reset membrane ``v_T``
    out (in place); h: pre-reset membrane ``[T, N]`` out when ``store_h`` (else unused: each block writes ``h_t`` to
    a one-row scratch); k, th: float32 decay and threshold; reset: a ``fused_constants.RESET_CODES`` value. pool:
    ``(kh, kw, W, E, Ho, C)`` int64 array; ``kh = 0``: s is the spikes ``[T, N]``; else each step's N neurons are
    ``[M, H, W, E]`` images of E-vectors and s receives their tiling ``kh x kw`` average pooling
    ``[T, N / (kh kw)]`` (``_pool_row``): the spikes themselves are never stored. The pooled step keeps the input's
    order, or with ``C > 0`` (a contiguous input, E = 1, of C channels) is written channels-last
    ``[B, Ho, Wo, C]`` (``_to_channels_last``) for a channels-last convolution next.
    """
    steps, n_cols = s.shape[0], v.shape[0]
    const = x.shape[0] == 1
    pooled, relayout, _, area, _ = _pool_constants(pool)
    cols, n_blocks = block_layout(n_cols, pool, steps)
    staged = _overlap(x, s) or (store_h and _overlap(x, h))  # an in-place forward: read x from a block-local row
    for b in nb.prange(n_blocks):
        lo = b * cols
        hi = min(lo + cols, n_cols)
        scratch = np.empty(0 if store_h else hi - lo, dtype=x.dtype)
        x_in = np.empty(hi - lo if staged else 0, dtype=x.dtype)
        spikes = np.empty(hi - lo if pooled else 0, dtype=x.dtype)
        acc = np.empty(pool[2] * pool[3] if pooled else 0, dtype=x.dtype)
        olo, ohi = lo // area, hi // area
        rows = np.empty(ohi - olo if relayout else 0, dtype=x.dtype)
        for t in range(steps):
            h_row = h[t, lo:hi] if store_h else scratch
            s_row = spikes if pooled else s[t, lo:hi]
            _row_forward(_read_row(x[0 if const else t, lo:hi], x_in, staged), v[lo:hi], s_row, h_row, k, th, reset)
            if pooled:
                _write_pooled(spikes, s[t], olo, ohi, pool, acc, rows, rows)  # float: no staging buffer used


_EXP_LOW = np.float32(-87.3365)  # below: e^x < FLT_MIN, returned as 0 (no subnormals)
_EXP_HIGH = np.float32(88.0)  # the table's 2^127 stays within reach of the polynomial up to here
_EXP_OVERFLOW = np.float32(88.7228)  # above: e^x > FLT_MAX, returned as inf
_LOG2E = np.float32(1.4426950408889634)
_LN2_HIGH, _LN2_LOW = np.float32(0.693359375), np.float32(-2.12194440e-4)  # ln 2 = high + low; n * high is exact
_EXP_POLY = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                           1.6666665459e-1, 5.0000001201e-1))  # minimax e^r - 1 - r on |r| <= ln2/2
_POW2 = np.array([2.0**e for e in range(-126, 128)], dtype=np.float32)  # 2^n for n = -126 .. 127


def _exp(x):
    """``e^x`` in the kernels: ``np.exp`` for float64, ``_exp32`` for float32 (resolved when numba compiles)."""
    return np.exp(x)


@nb.extending.overload(_exp)
def _exp_for(x):
    return (lambda x: _exp32(x)) if x == nb.types.float32 else (lambda x: np.exp(x))


@nb.njit(**KERNEL_OPTIONS)
def _exp32(x):
    """``e^x`` for float32 ``x`` in operations LLVM vectorises (a libm ``exp`` call keeps a row loop scalar: the
    fused LIF's backward with the sigmoid surrogate took 3.1-3.4x the rectangular one's time, 1.6-1.8x with this;
    ``benchmarks/RESULTS.md``, session 29): ``x = n ln 2 + r`` with
    ``n = round(x / ln 2)``, ``e^x = 2^n (1 + r + r^2 P(r))``, ``2^n`` read from a table. Within 1 ulp of
    the exact value for ``-87.33 <= x <= 88`` (measured on 5 million points; ``np.exp`` in float32 differs by up to
    3 ulp). Below ``ln FLT_MIN`` it returns 0 (where ``np.exp`` gives a subnormal or 0: no subnormals reach the
    surrogates, whose reference is 0 there), above ``ln FLT_MAX`` inf, and ``e^88`` in between (``88 < x <= 88.72``,
    where the exact value is at most 2x larger); NaN stays NaN."""
    c = x if x > _EXP_LOW else _EXP_LOW  # NaN -> the low end here, restored below: the table index stays valid
    c = c if c < _EXP_HIGH else _EXP_HIGH
    n = np.floor(c * _LOG2E + np.float32(0.5))
    r = (c - n * _LN2_HIGH) - n * _LN2_LOW
    p = _EXP_POLY[0]
    for coefficient in _EXP_POLY[1:]:
        p = p * r + coefficient
    e = (p * r * r + r + _ONE) * _POW2[np.int32(n) + 126]
    e = e if x >= _EXP_LOW else _ZERO
    e = e if x <= _EXP_OVERFLOW else np.float32(np.inf)
    return e if x == x else x


@nb.njit(**KERNEL_OPTIONS)
def _row_surrogate(h, th, code, p1, p2, out):
    """``out[n] = sg(h[n] - th)`` for 1-D rows; ``sg`` by ``code`` (``fused_constants.SURROGATE_CODES``), its constants
    ``p1, p2`` from ``fused_constants.surrogate_constants`` (the formulas: ``neurons.surrogate``'s table)."""
    if code == 0:  # rectangular: (1/a) 1[|u| < a/2]
        for n in range(h.shape[0]):
            out[n] = p1 if abs(h[n] - th) < p2 else _ZERO
    elif code == 1:  # sigmoid: alpha sig(alpha u) (1 - sig(alpha u))
        for n in range(h.shape[0]):
            sig = _ONE / (_ONE + _exp(-(p1 * (h[n] - th))))
            out[n] = p1 * sig * (_ONE - sig)
    elif code == 2:  # fast sigmoid: 1 / (1 + k|u|)^2
        for n in range(h.shape[0]):
            d = _ONE + p1 * abs(h[n] - th)
            out[n] = _ONE / (d * d)
    elif code == 3:  # arctan: (alpha/2) / (1 + (pi/2 alpha u)^2)
        for n in range(h.shape[0]):
            c = p2 * (h[n] - th)
            out[n] = p1 / (_ONE + c * c)
    elif code == 4:  # tent (triangular, piecewise quadratic): p1 max(0, 1 - p2|u|), NaN kept
        for n in range(h.shape[0]):
            d = _ONE - p2 * abs(h[n] - th)
            out[n] = p1 * (_ZERO if d < _ZERO else d)
    elif code == 5:  # erf: (alpha/sqrt(pi)) exp(-(alpha u)^2)
        for n in range(h.shape[0]):
            c = p2 * (h[n] - th)
            out[n] = p1 * _exp(-(c * c))
    else:  # straight-through: 1
        for n in range(h.shape[0]):
            out[n] = _ONE


@nb.njit(**KERNEL_OPTIONS)
def _row_backward(h, gs, gh, gv, gx, sg, kb, th, reset, detach):
    """One reverse time step of one block (module docstring); ``sg`` holds ``sg(h - th)``, ``gv`` in/out."""
    if reset == 0 and not detach:
        for n in range(h.shape[0]):
            ht = h[n]
            g = gv[n]
            keep = _ZERO if ht - th >= _ZERO else _ONE  # 1 - s_t
            g_h = g * keep + sg[n] * (gs[n] - g * ht) + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h
    elif reset == 0:
        for n in range(h.shape[0]):
            g = gv[n]
            keep = _ZERO if h[n] - th >= _ZERO else _ONE
            g_h = g * keep + sg[n] * gs[n] + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h
    elif reset == 1 and not detach:
        for n in range(h.shape[0]):
            g = gv[n]
            g_h = g + sg[n] * (gs[n] - g * th) + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h
    else:  # subtract with detached reset, or no reset: dv/dh = 1, no path through the reset
        for n in range(h.shape[0]):
            g = gv[n]
            g_h = g + sg[n] * gs[n] + gh[n]
            gx[n] = g_h
            gv[n] = kb * g_h


@nb.njit(**KERNEL_OPTIONS)
def _row_add(acc, row):
    """``acc += row`` for 1-D rows."""
    for n in range(acc.shape[0]):
        acc[n] += row[n]


@nb.njit(parallel=True, **KERNEL_OPTIONS)
def lif_backward(h, gs, gh, has_gh, gv, gx, kb, th, reset, detach, code, p1, p2, pool, x, v0, k):
    """BPTT over T in one call (module docstring).

    h: saved pre-reset membrane ``[T, N]``, or ``[0, N]`` when it was not saved: each block then first
    recomputes its ``h`` from the forward inputs ``x`` (``[T, N]`` or one time-invariant row ``[1, N]``),
    ``v0`` ``[N]`` and the forward decay ``k`` (``lif_forward``'s update, so bit for bit the same ``h``) into a
    ``[T, block]`` scratch that stays in cache; otherwise x and v0 are unused. gs: ``dL/ds`` ``[T, N]``, or
    with ``pool`` (``lif_forward``) ``dL/d(pooled spikes)`` ``[T, N / (kh kw)]``, spread over the windows by
    ``_unpool_row``; gh: ``dL/dh`` ``[T, N]`` used when ``has_gh`` (else a zero row is added); gv: ``[N]``
    ``dL/dv_T`` in, ``dL/dv_0`` out (in place); gx: ``dL/dx`` ``[T, N]`` out, or ``[1, N]`` (zeros in) for an
    input that was the same at every step: then ``gx[0] += dL/dx_t`` for t = T..1, the sum the stride-0
    expansion would have taken, without a ``[T, N]`` buffer; kb: float32 backward leak; detach:
    detach_reset; code, p1, p2: the surrogate (``fused_constants.surrogate_constants``). A ``gs`` of one row
    with a saved ``h`` of T > 1 rows is the same ``dL/ds`` at every step (the stride-0 gradient of a loss such as
    ``s.sum()``): row 0 is read at every t instead of a ``[T, N]`` copy; so it is when ``h`` is recomputed from an
    ``x`` of T rows. T is the most rows of ``h``, ``gs`` and ``x``.
    """
    steps, n_cols = max(h.shape[0], gs.shape[0], x.shape[0]), gv.shape[0]
    gt_step = 0 if gs.shape[0] == 1 else 1  # row of gs read at step t: t * gt_step
    summed = gx.shape[0] == 1 and steps > 1
    recompute = h.shape[0] == 0
    const = x.shape[0] == 1
    pooled, relayout, _, area, _ = _pool_constants(pool)
    cols, n_blocks = block_layout(n_cols, pool, steps)
    staged = not recompute and _overlap(h, gx)  # dL/dx written over the saved h: read h from a block-local row
    for b in nb.prange(n_blocks):
        lo = b * cols
        hi = min(lo + cols, n_cols)
        width = hi - lo
        sg = np.empty(width, dtype=gv.dtype)
        h_in = np.empty(width if staged else 0, dtype=gv.dtype)
        zero = np.zeros(0 if has_gh else width, dtype=gv.dtype)
        step_gx = np.empty(width if summed else 0, dtype=gv.dtype)
        spread = np.empty(width if pooled else 0, dtype=gv.dtype)
        olo, ohi = lo // area, hi // area
        rows = np.empty(ohi - olo if relayout else 0, dtype=gv.dtype)
        block_h = np.empty((steps if recompute else 0, width), dtype=gv.dtype)
        if recompute:
            v = v0[lo:hi].copy()
            for t in range(steps):
                _row_forward(x[0 if const else t, lo:hi], v, sg, block_h[t], k, th, reset)  # sg: spike scratch
        for t in range(steps - 1, -1, -1):
            h_row = _read_row(block_h[t] if recompute else h[t, lo:hi], h_in, staged)
            tg = t * gt_step
            if pooled:
                _spread_pooled(gs[tg], olo, ohi, pool, rows, rows, spread)  # float: no staging buffer used
            gs_row = spread if pooled else gs[tg, lo:hi]
            _row_surrogate(h_row, th, code, p1, p2, sg)
            gh_row = gh[t, lo:hi] if has_gh else zero
            out = step_gx if summed else gx[t, lo:hi]
            _row_backward(h_row, gs_row, gh_row, gv[lo:hi], out, sg, kb, th, reset, detach)
            if summed:
                _row_add(gx[0, lo:hi], step_gx)
