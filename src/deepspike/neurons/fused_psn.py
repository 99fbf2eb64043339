"""The parallel spiking neuron (``neurons.psn``) as one autograd Function: matmuls in torch, firing and the
surrogate gradient in numba (``psn_kernels``)::

    forward:   H = W X  ([T, T] @ [T, N]),  S = H(H - b)              saves X only
    backward:  H = W X again,  G_H = G_S sg(H - b),  G_X = W^T G_H,  G_W = G_H X^T,  G_b = -sum_n G_H

Used on CPU float32 tensors when numba is importable, ``DEEPSPIKE_FUSED`` is not 0 and the surrogate is one the
kernels know (``psn_fused_supported``); the values equal the plain torch formula (spikes bit for bit for the same
``H``; gradients to float rounding).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from deepspike.core.threads import run_numba_kernel
from deepspike.neurons.fused import kernel_ready
from deepspike.neurons.fused_constants import SURROGATE_CODES, surrogate_constants
from deepspike.neurons.surrogate import Surrogate

_KERNELS: list = []  # [module] once imported (numba is slow to load)


def _kernels():
    if not _KERNELS:
        from deepspike.neurons import psn_kernels

        _KERNELS.append(psn_kernels)
    return _KERNELS[0]


def psn_fused_supported(x: torch.Tensor, spike_fn: Surrogate) -> bool:
    """Whether ``fused_psn`` can run ``x [T, B, ...]``: ``fused.kernel_ready`` (numba, switch on, CPU float32,
    not empty) and a surrogate the kernels implement."""
    return kernel_ready(x) and spike_fn.name in SURROGATE_CODES


class _FusedPSN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, spike_fn):
        flat = x.detach().reshape(x.shape[0], -1)  # [T, B, ...] -> [T, N]
        h = weight.detach() @ flat  # [T, N]
        b = bias.detach().contiguous()
        s = torch.empty_like(h)  # (not over h: aliased rows would not vectorise, measured ~15x slower)
        run_numba_kernel(_kernels().psn_fire, h.numpy(), b.numpy(), s.numpy())
        ctx.save_for_backward(flat, weight, bias)
        ctx.spike_fn, ctx.shape = spike_fn, x.shape
        return s.view(x.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s):
        flat, weight, bias = ctx.saved_tensors
        h = weight.detach() @ flat  # recomputed [T, N]
        gs = g_s.reshape(h.shape).contiguous()
        code, p1, p2 = surrogate_constants(ctx.spike_fn.name, ctx.spike_fn.params)
        run_numba_kernel(_kernels().psn_surrogate_grad, h.numpy(), bias.detach().contiguous().numpy(), gs.numpy(),
                         h.numpy(), code, np.float32(p1), np.float32(p2))  # G_H written over h
        g_x = (weight.detach().t() @ h).view(ctx.shape) if ctx.needs_input_grad[0] else None
        g_w = h @ flat.t() if ctx.needs_input_grad[1] else None
        return g_x, g_w, -h.sum(dim=1), None


def fused_psn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, spike_fn: Surrogate) -> torch.Tensor:
    """``S = H(W X - b)``: ``x [T, B, ...]``, ``weight [T, T]``, ``bias [T]`` (module docstring) -> ``[T, B, ...]``."""
    return _FusedPSN.apply(x, weight, bias, spike_fn)
