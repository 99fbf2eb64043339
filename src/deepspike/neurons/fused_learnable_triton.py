"""Triton kernels of the fused LIF update with per-neuron decay and threshold: the same equations and arguments as
``fused_learnable_kernels.learnable_forward`` / ``learnable_backward`` (read that module's docstring), on torch
tensors. Each program owns ``BLOCK`` neurons and runs the time loop with ``v`` (forward) or ``dL/dv`` (backward)
and the ``dL/dk``, ``dL/dth`` accumulators in registers. The backward first re-runs the forward into a transient
``[T, N]`` buffer of ``h`` (the numba kernel recomputes it block by block in cache instead).

Checked without a GPU in Triton's interpreter (``TRITON_INTERPRET=1``) against the numba kernels and the
reference loop: ``tests/neurons/test_fused_learnable_triton.py``. float32 only.
"""

from __future__ import annotations

import torch

from deepspike.core.triton_compat import HAVE_TRITON, jit, tl  # noqa: F401  (HAVE_TRITON: read by fused_learnable)
from deepspike.neurons.fused_triton import BLOCK, _check, _grid, _surrogate


@jit
def _forward_kernel(x_ptr, v_ptr, s_ptr, h_ptr, k_ptr, th_ptr, steps, n, RESET: tl.constexpr,
                    CONST_X: tl.constexpr, DECAY_INPUT: tl.constexpr, STORE_S: tl.constexpr,
                    STORE_H: tl.constexpr, BLOCK: tl.constexpr):
    """``h_t = k v + c x_t, s_t = 1[h_t - th >= 0], v = reset(h_t, s_t)`` for t < steps on one block."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    v = tl.load(v_ptr + offs, mask=live, other=0.0)
    k = tl.load(k_ptr + offs, mask=live, other=0.0)
    th = tl.load(th_ptr + offs, mask=live, other=1.0)
    for t in range(steps):
        x = tl.load(x_ptr + (0 if CONST_X else t) * n + offs, mask=live, other=0.0)
        if DECAY_INPUT:
            x = (1.0 - k) * x
        h = k * v + x
        s = tl.where(h - th >= 0.0, 1.0, tl.where(h == h, 0.0, h))
        if STORE_S:
            tl.store(s_ptr + t * n + offs, s, mask=live)
        if STORE_H:
            tl.store(h_ptr + t * n + offs, h, mask=live)
        v = _reset(h, s, th, RESET)
    tl.store(v_ptr + offs, v, mask=live)


@jit
def _reset(h, s, th, RESET: tl.constexpr):
    """The post-reset membrane: ``h (1 - s)`` (zero), ``h - th s`` (subtract) or ``h`` (none)."""
    if RESET == 0:
        v = h * (1.0 - s)
    elif RESET == 1:
        v = h - th * s
    else:
        v = h
    return v


@jit
def _backward_kernel(x_ptr, h_ptr, v0_ptr, gs_ptr, gv_ptr, gx_ptr, gk_ptr, gth_ptr, k_ptr, th_ptr, steps, n,
                     p1, p2, RESET: tl.constexpr, DETACH: tl.constexpr, DECAY_INPUT: tl.constexpr,
                     CONST_X: tl.constexpr, CODE: tl.constexpr, BLOCK: tl.constexpr):
    """BPTT for t = steps-1 .. 0 on one block (``fused_learnable_kernels`` docstring)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    gv = tl.load(gv_ptr + offs, mask=live, other=0.0)
    k = tl.load(k_ptr + offs, mask=live, other=0.0)
    th = tl.load(th_ptr + offs, mask=live, other=1.0)
    gk = tl.zeros((BLOCK,), dtype=tl.float32)
    gth = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in range(steps):
        t = steps - 1 - i
        h = tl.load(h_ptr + t * n + offs, mask=live, other=0.0)
        if t == 0:
            v_prev = tl.load(v0_ptr + offs, mask=live, other=0.0)
        else:
            hp = tl.load(h_ptr + (t - 1) * n + offs, mask=live, other=0.0)
            v_prev = _reset(hp, tl.where(hp - th >= 0.0, 1.0, 0.0), th, RESET)
        u = h - th
        s = tl.where(u >= 0.0, 1.0, 0.0)
        sg = _surrogate(u, p1, p2, CODE)
        gs = tl.load(gs_ptr + t * n + offs, mask=live, other=0.0)
        if RESET == 0:
            g_s = gs if DETACH else gs - gv * h
            g_h = sg * g_s + gv * (1.0 - s)
            gth += -sg * g_s
        elif RESET == 1:
            g_s = gs if DETACH else gs - gv * th
            g_h = sg * g_s + gv
            gth += -sg * g_s - gv * s
        else:
            g_s = gs
            g_h = sg * g_s + gv
            gth += -sg * g_s
        x = tl.load(x_ptr + (0 if CONST_X else t) * n + offs, mask=live, other=0.0)
        if DECAY_INPUT:
            tl.store(gx_ptr + t * n + offs, (1.0 - k) * g_h, mask=live)
            gk += g_h * (v_prev - x)
        else:
            tl.store(gx_ptr + t * n + offs, g_h, mask=live)
            gk += g_h * v_prev
        gv = k * g_h
    tl.store(gv_ptr + offs, gv, mask=live)
    tl.store(gk_ptr + offs, tl.load(gk_ptr + offs, mask=live, other=0.0) + gk, mask=live)
    tl.store(gth_ptr + offs, tl.load(gth_ptr + offs, mask=live, other=0.0) + gth, mask=live)


def learnable_forward(x, v, s, k, th, reset, decay_input) -> None:
    """``fused_learnable_kernels.learnable_forward`` on torch tensors."""
    _check(None, x, s)
    steps, n = s.shape[0], v.shape[0]
    if n:
        _forward_kernel[_grid(n)](x, v, s, s, k, th, steps, n, RESET=int(reset), CONST_X=x.shape[0] == 1,
                                  DECAY_INPUT=bool(decay_input), STORE_S=True, STORE_H=False, BLOCK=BLOCK)


def learnable_backward(x, v0, gs, gv, gx, gk, gth, k, th, reset, detach, decay_input, code, p1, p2) -> None:
    """``fused_learnable_kernels.learnable_backward`` on torch tensors (``h`` recomputed into ``[T, N]`` first)."""
    _check(None, x, gs, gx)
    steps, n = gs.shape[0], gv.shape[0]
    if n == 0:
        return
    h = torch.empty((steps, n), dtype=gv.dtype, device=gv.device)
    _forward_kernel[_grid(n)](x, v0.clone(), h, h, k, th, steps, n, RESET=int(reset), CONST_X=x.shape[0] == 1,
                              DECAY_INPUT=bool(decay_input), STORE_S=False, STORE_H=True, BLOCK=BLOCK)
    _backward_kernel[_grid(n)](x, h, v0, gs, gv, gx, gk, gth, k, th, steps, n, float(p1), float(p2),
                               RESET=int(reset), DETACH=bool(detach), DECAY_INPUT=bool(decay_input),
                               CONST_X=x.shape[0] == 1, CODE=int(code), BLOCK=BLOCK)
