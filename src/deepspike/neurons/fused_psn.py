"""The parallel spiking neuron (``neurons.psn``) as one autograd Function: matmuls in torch, firing and the
surrogate gradient in numba (``psn_kernels``)::

    forward:   H = W X  ([T, T] @ [T, N]),  S = H(H - b)              saves X only

X is ``x``'s memory seen as ``[T, N]`` rows in its own per-step layout (``fused._dense_input``: contiguous or
channels-last steps are not copied; the matmul mixes time steps only, so any per-step order works), and S and
``dL/dx`` get that layout too.
    backward:  H = W X again,  G_H = G_S sg(H - b),  G_X = W^T G_H,  G_W = G_H X^T,  G_b = -sum_n G_H

Used on CPU float32 tensors when numba is importable, ``DEEPSPIKE_FUSED`` is not ``0``/``false``/``off``/``no``
and the surrogate is one the kernels know (``psn_fused_supported``); the values equal the plain torch formula (spikes
bit for bit for the same ``H``; gradients to float rounding).
"""

from __future__ import annotations

import numpy as np
import torch

from deepspike.core.compile_support import eager_under_compile
from deepspike.core.first_order import first_order_backward
from deepspike.core.threads import run_numba_kernel
from deepspike.neurons.fused import _dense_input, _like_steps, _repeated_step, _rows, kernel_ready, load_once
from deepspike.neurons.fused_constants import SURROGATE_CODES, surrogate_constants
from deepspike.neurons.fused_learnable import step_rows
from deepspike.neurons.surrogate import Surrogate

_KERNELS: list = []  # [module] once imported (numba is slow to load)


def _load_kernels():
    from deepspike.neurons import psn_kernels

    return psn_kernels


def _kernels():
    return load_once(_KERNELS, _load_kernels)


def psn_fused_supported(x: torch.Tensor, spike_fn: Surrogate) -> bool:
    """Whether ``fused_psn`` can run ``x [T, B, ...]``: ``fused.kernel_ready`` (numba, switch on, CPU float32,
    not empty) and a surrogate the kernels implement."""
    return kernel_ready(x) and spike_fn.name in SURROGATE_CODES


class _FusedPSN(torch.autograd.Function):
    """``(x, weight, bias) -> S`` (module docstring). ``steps``: ``x`` is the one ``[B, ...]`` step that a
    time-invariant input repeats ``steps`` times; then ``H = (W 1) x`` (row sums of W times the step: no
    ``[T, N]`` copy of the input), ``dL/dx = 1^T W^T G_H`` and ``dL/dW[t, k] = G_H[t] . x`` for every k."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)  # autocast off: the kernels read float32
    def forward(ctx, x, weight, bias, spike_fn, steps):
        rows, step = _dense_input(x if steps is None else x.unsqueeze(0))  # [T or 1, N], x's per-step layout
        t = x.shape[0] if steps is None else steps
        repeated = t if rows.shape[0] == 1 and t > 1 else None  # one row stands for all T steps
        s = _like_steps((t, *step.shape), step.stride(), x.device)  # (not over h: aliased rows do not vectorise)
        run_numba_kernel(_kernels().psn_fire, _membrane(weight.detach(), rows, repeated).numpy(),
                         bias.detach().contiguous().numpy(), _rows(s, t).numpy())
        ctx.save_for_backward(rows, weight, bias)
        ctx.spike_fn, ctx.step, ctx.steps, ctx.repeated = spike_fn, step, steps, repeated
        return s

    @staticmethod
    @first_order_backward("the fused parallel spiking neuron (neurons.fused_psn); "
                          "set DEEPSPIKE_FUSED=0 for the torch formula")
    @torch.amp.custom_bwd(device_type="cpu")  # forward's autocast state (off)
    def backward(ctx, g_s):
        rows, weight, bias = ctx.saved_tensors
        step, steps, w = ctx.step, ctx.steps, weight.detach()
        h = _membrane(w, rows, ctx.repeated)  # recomputed [T, N]
        code, p1, p2 = surrogate_constants(ctx.spike_fn.name, ctx.spike_fn.params)
        run_numba_kernel(_kernels().psn_surrogate_grad, h.numpy(), bias.detach().contiguous().numpy(),
                         step_rows(g_s, step).numpy(), h.numpy(), code, np.float32(p1), np.float32(p2))  # G_H
        t = h.shape[0]
        if steps is None:  # x [T, B, ...]: dL/dx[k] = sum_t W[t, k] G_H[t]
            g_x = (w.t() @ h).as_strided((t, *step.shape), (step.numel(), *step.stride()))
        else:  # x is the repeated step: dL/dx = sum_k sum_t W[t, k] G_H[t]
            g_x = (w.sum(dim=1) @ h).as_strided(step.shape, step.stride())
        g_w = h @ rows.t()  # [T, N] @ [N, T or 1]
        g_w = g_w if ctx.repeated is None else g_w.expand(t, t).contiguous()  # one row: the same for every k
        return g_x, g_w, -h.sum(dim=1), None, None


def _membrane(w: torch.Tensor, rows: torch.Tensor, steps: int | None) -> torch.Tensor:
    """``H = W X`` ``[T, N]`` from rows ``[T, N]``, or from one repeated row ``[1, N]`` as ``(W 1) x``."""
    return w @ rows if steps is None else w.sum(dim=1, keepdim=True) * rows


@eager_under_compile  # under torch.compile: one graph break, the autograd Function run eagerly
def fused_psn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, spike_fn: Surrogate) -> torch.Tensor:
    """``S = H(W X - b)``: ``x [T, B, ...]``, ``weight [T, T]``, ``bias [T]`` (module docstring) -> ``[T, B, ...]``."""
    base = _repeated_step(x) if torch.is_grad_enabled() else None
    if base is not None:  # a time-invariant input (direct encoding): work on its one step
        return _FusedPSN.apply(base, weight, bias, spike_fn, x.shape[0])
    return _FusedPSN.apply(x, weight, bias, spike_fn, None)
