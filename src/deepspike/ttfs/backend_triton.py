"""Triton backend of the closed-form TTFS layer (CUDA tensors): the event sweep of ``kernels_numba`` run per
receptive field, with the output channels held in registers.

Every receptive field becomes one row of input times (``backend_torch.receptive_rows``: +inf padding, the bias
as an input at t = 0), rows are sorted by ``torch.sort``, and one program sweeps one row for ``BLOCK_O`` output
channels: per input in time order it checks whether each channel's membrane reached theta by that input's
time (the end of the inter-input interval), fires and freezes those that did, then adds the input; the
running sums ``a = sum w``, ``s = sum w x`` (``x = t - ref``, or ``exp((t - ref)/tau)`` with the reference
moved forward before ``x`` exceeds e^30) never leave registers. The spike times and slopes equal the numba
and torch backends' (the same first-crossing rule, ``causal_set``); the backward pass is
``backend_torch.backward`` (chunked, exact), which ``autograd.SpikeTimeConv`` uses for every backend but numba.

Memory: the unfolded, sorted rows of ``samples_per_chunk`` samples at a time (times, sort order) and the
``[B, O, H', W']`` outputs; never B x O x positions x fan_in. Checked without a GPU in Triton's interpreter
(``TRITON_INTERPRET=1``) against the numba backend: ``tests/ttfs/test_backend_triton.py`` (skipped without
triton); not timed yet, as no GPU has been lent to this project.
"""

from __future__ import annotations

import torch

from deepspike.core.triton_compat import HAVE_TRITON, jit, tl, triton
from deepspike.ttfs import backend_torch
from deepspike.ttfs.kernels_numba import RESCALE_AT

BLOCK_O = 32  # output channels per program


@jit
def _next_up(t):
    """The next float of ``t``'s dtype above ``t`` (``torch.nextafter(t, inf)``; -inf gives the lowest finite float,
    +-0 the smallest subnormal), by stepping the bit pattern: the lower end of a spike time after an input at ``t``
    (``causal_set.after_last_input``)."""
    if t.dtype == tl.float64:
        bits = t.to(tl.int64, bitcast=True)
        return tl.where(t > 0, bits + 1, tl.where(t < 0, bits - 1, 1)).to(tl.float64, bitcast=True)
    bits = t.to(tl.int32, bitcast=True)
    return tl.where(t > 0, bits + 1, tl.where(t < 0, bits - 1, 1)).to(tl.float32, bitcast=True)


@jit
def _fire_before_rescale(a, s, t_out, slope, ref, tg, theta, tau, lo):
    """exp: before the reference moves from ``ref`` to ``tg`` (``s`` scaled by ``f = exp(-(tg - ref)/tau)``, which
    can underflow to 0), every channel whose ``V(tg) = a - s f`` reached theta fires in the old frame
    (``kernels_numba._fire_by``), at a time in ``[lo, tg]`` (``lo``: just after the last input). Returns
    ``(a, s f, t_out, slope)``."""
    f = tl.exp(-(tg - ref) / tau)
    early = (a > -float("inf")) & (a - theta >= s * f) & ((a > theta) | (s <= 0.0))  # a = -inf: fired already
    ratio = s / (a - theta)
    ok = (ratio > 0.0) & (ratio < float("inf"))
    t_early = tl.where(ok, tl.minimum(tl.maximum(ref + tau * tl.log(tl.where(ok, ratio, 1.0)), lo), tg), tg)
    t_out = tl.where(early, t_early, t_out)
    slope = tl.where(early, a - theta, slope)
    return tl.where(early, -float("inf"), a), s * f, t_out, slope


@jit
def _sweep_kernel(t_ptr, col_ptr, nfin_ptr, wt_ptr, t_out_ptr, slope_ptr, n_cols, n_out, theta, tau, rescale_at,
                  IS_EXP: tl.constexpr, BLOCK_O: tl.constexpr):
    """Row r (sorted times ``t [R, F]``, their columns ``col [R, F]``, finite count ``nfin [R]``), channels
    ``o`` of block ``program_id(1)``: ``t_out[r, o]``, ``slope[r, o]`` from weights ``wt [F, O]``."""
    r = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    live = offs < n_out
    row = r * n_cols
    first = tl.load(t_ptr + row)
    zero = first - first  # the times' dtype
    a = tl.zeros((BLOCK_O,), dtype=t_ptr.dtype.element_ty)
    s = tl.zeros((BLOCK_O,), dtype=t_ptr.dtype.element_ty)
    t_out = a + float("inf")
    slope = a
    ref = first
    t_last = zero - float("inf")  # the last input added so far
    n = tl.load(nfin_ptr + r)
    for j in range(0, n):
        tg = tl.load(t_ptr + row + j)
        w = tl.load(wt_ptr + tl.load(col_ptr + row + j) * n_out + offs, mask=live, other=0.0)
        # a spike revealed at tg lies in [nextafter(t_last), tg] (causal_set.after_last_input; no bound in a tie)
        lo = tl.where(t_last < tg, _next_up(t_last), zero - float("inf"))
        if IS_EXP:
            if (tg - ref) / tau > rescale_at:
                a, s, t_out, slope = _fire_before_rescale(a, s, t_out, slope, ref, tg, theta, tau, lo)
                ref = tg
            x = tl.exp((tg - ref) / tau)
            thx = theta * x
        else:
            x = tg - ref
            thx = theta + zero
        # checked once per tie group, after all of it: at a later member of the group no crossing counts
        fire = a * x - s >= tl.where(t_last < tg, thx, float("inf"))
        if IS_EXP:
            ratio = s / (a - theta)
            ok = (ratio > 0.0) & (ratio < float("inf"))
            t_new = tl.where(ok, tl.minimum(tl.maximum(ref + tau * tl.log(tl.where(ok, ratio, 1.0)), lo), tg), tg)
            d_new = a - theta
        else:
            t_new = tl.minimum(tl.maximum(ref + (theta + s) / tl.where(fire, a, 1.0), lo), tg)  # fired lanes matter
            d_new = a
        t_out = tl.where(fire, t_new, t_out)
        slope = tl.where(fire, d_new, slope)
        a = tl.where(fire, -float("inf"), a) + w
        s = s + w * x
        t_last = tg
    # a spike after the last input (strictly after it): exp needs a > theta, relpsp a > 0 (frozen: a = -inf)
    lo = _next_up(t_last)
    if IS_EXP:
        ratio = s / (a - theta)
        after = (a > theta) & (ratio > 0.0) & (ratio < float("inf"))
        t_out = tl.where(after, tl.maximum(ref + tau * tl.log(tl.where(after, ratio, 1.0)), lo), t_out)
        slope = tl.where(after, a - theta, slope)
    else:
        after = a > 0.0
        t_out = tl.where(after, tl.maximum(ref + (theta + s) / tl.where(after, a, 1.0), lo), t_out)
        slope = tl.where(after, a, slope)
    tl.store(t_out_ptr + r * n_out + offs, t_out, mask=live)
    tl.store(slope_ptr + r * n_out + offs, slope, mask=live)


def forward(t_in, weight, bias, stride, padding, kernel, theta, tau, chunk_elements):
    """Spike times and slopes [B, O, H', W'] via the Triton sweep (``samples_per_chunk`` samples at a time)."""
    if not HAVE_TRITON:
        raise RuntimeError("the Triton TTFS backend needs triton (pip install triton)")
    b_all = t_in.shape[0]
    o, _, kh, kw = weight.shape
    per, ho, wo = backend_torch.samples_per_chunk(t_in, weight, stride, padding, chunk_elements)
    wt = backend_torch.flat_weight(weight, bias).detach().to(t_in.dtype).t().contiguous()  # [F, O]
    t_out = t_in.new_empty((b_all, ho, wo, o))
    slope = t_in.new_empty((b_all, ho, wo, o))
    for b0 in range(0, b_all, per):
        b1 = min(b_all, b0 + per)
        rows = backend_torch.receptive_rows(t_in[b0:b1].detach(), kh, kw, stride, padding, bias is not None)
        times, cols = torch.sort(rows, dim=1)  # [R, F] ascending, +inf last
        times, cols = times.contiguous(), cols.contiguous()
        n_fin = torch.isfinite(times).sum(1).to(torch.int32)  # [R]
        n_rows, n_cols = times.shape
        grid = (n_rows, triton.cdiv(o, BLOCK_O))
        _sweep_kernel[grid](times, cols, n_fin, wt, t_out[b0:b1], slope[b0:b1], n_cols, o, float(theta),
                            float(tau), RESCALE_AT, IS_EXP=kernel == "exp", BLOCK_O=BLOCK_O)
    return t_out.permute(0, 3, 1, 2), slope.permute(0, 3, 1, 2)  # [B, H', W', O] -> [B, O, H', W'] (a view)

