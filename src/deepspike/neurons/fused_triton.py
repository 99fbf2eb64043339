"""Triton kernels of the fused IF/LIF update for CUDA tensors: the same equations and arguments as
``fused_kernels.lif_forward`` / ``lif_backward`` (read that module's docstring for the update and its BPTT),
on torch tensors instead of numpy arrays.

Each program owns ``BLOCK`` contiguous neurons and runs the whole time loop for them, keeping ``v`` (forward)
or ``dL/dv`` (backward) in registers: one read of ``x`` and one write of ``s`` (and ``h``) per step, the
memory traffic of a single elementwise op per step instead of ~10. Not supported here (the numba kernels
have them): average pooling inside the kernel (``pool`` must be all zeros; ``fused.poolable`` is False for
CUDA tensors). A backward without a saved ``h`` (time-invariant input, ``fused._FusedMultistep``'s
``recompute``) first re-runs the forward kernel into a transient ``[T, N]`` buffer, so the saving is only
between forward and backward, not during backward.

Checked without a GPU by running these kernels in Triton's interpreter (``TRITON_INTERPRET=1``) on CPU
tensors against the numba kernels and the reference loop: ``tests/neurons/test_fused_triton.py``, skipped
where triton is not installed. Triton may contract ``k v + x`` into one fused multiply-add on a GPU, so spikes
exactly at the threshold can differ from the reference's separately rounded product and sum.
"""

from __future__ import annotations

import torch

from deepspike.core.triton_compat import HAVE_TRITON, jit, tl, triton

BLOCK = 1024  # neurons per program
_MAX_INDEX = 2**31 - 1  # offsets are int32 inside the kernels


@jit
def _forward_kernel(x_ptr, v_ptr, s_ptr, h_ptr, steps, n, k, th, RESET: tl.constexpr, CONST_X: tl.constexpr,
                    STORE_S: tl.constexpr, STORE_H: tl.constexpr, BLOCK: tl.constexpr):
    """``h_t = k v + x_t, s_t = 1[h_t - th >= 0], v = reset(h_t, s_t)`` for t < steps on one block of neurons."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    v = tl.load(v_ptr + offs, mask=live, other=0.0)
    for t in range(steps):
        row = 0 if CONST_X else t
        h = k * v + tl.load(x_ptr + row * n + offs, mask=live, other=0.0)
        s = tl.where(h - th >= 0.0, 1.0, tl.where(h == h, 0.0, h))  # NaN for a NaN membrane
        if STORE_S:
            tl.store(s_ptr + t * n + offs, s, mask=live)
        if STORE_H:
            tl.store(h_ptr + t * n + offs, h, mask=live)
        if RESET == 0:
            v = h * (1.0 - s)
        elif RESET == 1:
            v = h - th * s
        else:
            v = h
    tl.store(v_ptr + offs, v, mask=live)


@jit
def _surrogate(u, p1, p2, CODE: tl.constexpr):
    """``sg(u)``, the surrogate derivative of code ``CODE`` (``fused_constants``; ``fused_kernels._row_surrogate``)."""
    if CODE == 0:  # rectangular: (1/a) 1[|u| < a/2]
        sg = tl.where(tl.abs(u) < p2, p1, 0.0)
    elif CODE == 1:  # sigmoid: alpha sig(alpha u) (1 - sig(alpha u))
        sig = 1.0 / (1.0 + tl.exp(-(p1 * u)))
        sg = p1 * sig * (1.0 - sig)
    elif CODE == 2:  # fast sigmoid: 1 / (1 + k|u|)^2
        d = 1.0 + p1 * tl.abs(u)
        sg = 1.0 / (d * d)
    elif CODE == 3:  # arctan: (alpha/2) / (1 + (pi/2 alpha u)^2)
        c = p2 * u
        sg = p1 / (1.0 + c * c)
    elif CODE == 4:  # tent (triangular, piecewise quadratic): p1 max(0, 1 - p2|u|), NaN kept
        d = 1.0 - p2 * tl.abs(u)
        sg = p1 * tl.where(d < 0.0, 0.0, d)
    elif CODE == 5:  # erf: (alpha/sqrt(pi)) exp(-(alpha u)^2)
        c = p2 * u
        sg = p1 * tl.exp(-(c * c))
    else:  # straight-through: 1
        sg = tl.zeros_like(u) + 1.0
    return sg


@jit
def _backward_kernel(h_ptr, gs_ptr, gh_ptr, gv_ptr, gx_ptr, steps, n, kb, th, p1, p2, RESET: tl.constexpr,
                     DETACH: tl.constexpr, CODE: tl.constexpr, HAS_GH: tl.constexpr,
                     SUMMED: tl.constexpr, CONST_GS: tl.constexpr, BLOCK: tl.constexpr):
    """BPTT for t = steps-1 .. 0 on one block (``fused_kernels`` docstring); ``SUMMED``: ``gx[0] += dL/dx_t``;
    ``CONST_GS``: ``gs`` is one row, the same ``dL/ds`` at every step."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    gv = tl.load(gv_ptr + offs, mask=live, other=0.0)
    total = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in range(steps):
        t = steps - 1 - i
        h = tl.load(h_ptr + t * n + offs, mask=live, other=0.0)
        gs = tl.load(gs_ptr + (0 if CONST_GS else t) * n + offs, mask=live, other=0.0)
        u = h - th
        sg = _surrogate(u, p1, p2, CODE)
        gh = tl.load(gh_ptr + t * n + offs, mask=live, other=0.0) if HAS_GH else 0.0
        if RESET == 0:
            keep = tl.where(u >= 0.0, 0.0, 1.0)  # 1 - s_t
            if DETACH:
                g_h = gv * keep + sg * gs + gh
            else:
                g_h = gv * keep + sg * (gs - gv * h) + gh
        elif RESET == 1 and not DETACH:
            g_h = gv + sg * (gs - gv * th) + gh
        else:  # subtract with detached reset, or no reset: dv/dh = 1, no path through the reset
            g_h = gv + sg * gs + gh
        if SUMMED:
            total += g_h
        else:
            tl.store(gx_ptr + t * n + offs, g_h, mask=live)
        gv = kb * g_h
    tl.store(gv_ptr + offs, gv, mask=live)
    if SUMMED:
        tl.store(gx_ptr + offs, tl.load(gx_ptr + offs, mask=live, other=0.0) + total, mask=live)


def _check(pool, *tensors: torch.Tensor) -> None:
    if not HAVE_TRITON:
        raise RuntimeError("the Triton kernels need triton (pip install triton)")
    if pool is not None and any(int(p) for p in pool):
        raise ValueError("the Triton kernels do not pool; use the numba kernels (CPU) for pool=(kh, kw)")
    if any(t.numel() > _MAX_INDEX for t in tensors):
        raise ValueError("the Triton kernels index with int32: a [T, N] buffer above 2**31 - 1 elements")


def _grid(n: int) -> tuple[int]:
    return (triton.cdiv(n, BLOCK),)


def lif_forward(x, v, s, h, k, th, reset, store_h, pool) -> None:
    """``fused_kernels.lif_forward`` on torch tensors (``x [T or 1, N]``, ``v [N]`` in/out, ``s, h [T, N]``)."""
    _check(pool, x, s, h)
    steps, n = s.shape[0], v.shape[0]
    if n == 0:
        return
    _forward_kernel[_grid(n)](x, v, s, h, steps, n, float(k), float(th), RESET=int(reset),
                              CONST_X=x.shape[0] == 1, STORE_S=True, STORE_H=bool(store_h), BLOCK=BLOCK)


def lif_backward(h, gs, gh, has_gh, gv, gx, kb, th, reset, detach, code, p1, p2, pool, x, v0, k) -> None:
    """``fused_kernels.lif_backward`` on torch tensors; an ``h`` of zero rows is recomputed from ``x`` and ``v0``
    into a transient ``[T, N]`` buffer first. As there, a one-row ``gs`` is the same ``dL/ds`` at every step, and
    T is the most rows of ``h``, ``gs`` and ``x``."""
    _check(pool, h, gs, gx, x)
    steps, n = max(h.shape[0], gs.shape[0], x.shape[0]), gv.shape[0]
    if n == 0:
        return
    if h.shape[0] == 0:
        h = torch.empty((steps, n), dtype=gv.dtype, device=gv.device)
        v = v0.clone()
        _forward_kernel[_grid(n)](x, v, h, h, steps, n, float(k), float(th), RESET=int(reset),
                                  CONST_X=x.shape[0] == 1, STORE_S=False, STORE_H=True, BLOCK=BLOCK)
    summed = gx.shape[0] == 1 and steps > 1
    _backward_kernel[_grid(n)](h, gs, gh, gv, gx, steps, n, float(kb), float(th), float(p1), float(p2),
                               RESET=int(reset), DETACH=bool(detach), CODE=int(code), HAS_GH=bool(has_gh),
                               SUMMED=summed, CONST_GS=gs.shape[0] == 1 and steps > 1, BLOCK=BLOCK)
