"""Numba backend of the closed-form TTFS layer on images (wraps ``kernels_numba``), same API as
``backend_torch``: ``forward(...) -> (t_out, slope)`` and ``backward(...) -> (grad_t, grad_w, grad_b)``."""

from __future__ import annotations

import math

import numpy as np
import torch

from deepspike.temporal import kernels_numba as kn
from deepspike.temporal.backend_torch import bias_grad, out_size
from deepspike.temporal.gradients import output_coefficient

# the separable exp backward multiplies exp((t_i - ref)/tau) by exp(-(t_out - ref)/tau): keep both in range
_SPAN_LIMIT = {torch.float32: 80.0, torch.float64: 700.0}


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


def forward(t_in, weight, bias, stride, padding, kernel, theta, tau, chunk_elements=None):
    """Spike times and slopes [B, O, H', W'] via the numba event sweep (chunk_elements is unused: the
    sweep never holds more than one sample's order and 2 * O*H'*W' running sums per thread)."""
    b, _, h, w = t_in.shape
    o, _, kh, kw = weight.shape
    ho, wo = out_size(h, kh, stride[0], padding[0]), out_size(w, kw, stride[1], padding[1])
    dtype = t_in.dtype
    w_r = _reversed_flat(weight.to(dtype))
    b_np = _np(bias.to(dtype)) if bias is not None else np.zeros(o, dtype=w_r.dtype)
    t_out = np.full((b, ho * wo * o), np.inf, dtype=w_r.dtype)
    slope = np.zeros((b, ho * wo * o), dtype=w_r.dtype)
    kn.forward_kernel(
        _np(t_in), w_r, b_np, bias is not None, kh, kw, stride[0], stride[1], padding[0], padding[1], ho, wo,
        kernel == "exp", float(theta), float(tau), t_out, slope,
    )
    to = torch.from_numpy(t_out).reshape(b, ho, wo, o).permute(0, 3, 1, 2).contiguous()  # [B, O, H', W']
    return to, torch.from_numpy(slope).reshape(b, ho, wo, o).permute(0, 3, 1, 2).contiguous()


def _reversed_flat(weight: torch.Tensor) -> np.ndarray:
    """[O, C, kh, kw] -> flat [C*kh*kw*O] in layout [C, kh, kw reversed, O] (see ``kernels_numba``)."""
    return _np(weight.flip(3).permute(1, 2, 3, 0).reshape(-1))


def span_ok(t_in: torch.Tensor, t_out: torch.Tensor, tau: float) -> bool:
    """True when every sample's finite times span little enough for the separable exp backward."""
    b = t_in.shape[0]
    fin_in = torch.where(torch.isfinite(t_in), t_in, torch.full_like(t_in, math.inf)).reshape(b, -1)
    fin_out = torch.where(torch.isfinite(t_out), t_out, torch.full_like(t_out, -math.inf)).reshape(b, -1)
    span = (fin_out.max(1).values - fin_in.min(1).values) / tau
    span = torch.where(torch.isfinite(span), span, torch.zeros_like(span))
    return bool((span <= _SPAN_LIMIT.get(t_in.dtype, 80.0)).all())


def backward(t_in, weight, bias, stride, padding, kernel, tau, t_out, slope, grad_out, chunk_elements=None):
    """Exact VJP via the numba masked kernel; ``(grad_t [B,C,H,W], grad_w [O,C,kh,kw], grad_b | None)``."""
    dtype = t_in.dtype
    coef = output_coefficient(grad_out, t_out, slope)  # [B, O, H', W']
    b = t_in.shape[0]
    fin = torch.where(torch.isfinite(t_in), t_in, torch.full_like(t_in, math.inf)).reshape(b, -1)
    ref = fin.min(1).values
    ref = torch.where(torch.isfinite(ref), ref, torch.zeros_like(ref))  # [B]
    safe_out = torch.where(coef != 0, t_out, torch.zeros_like(t_out))
    if kernel == "exp":
        p = coef * torch.exp(-(safe_out - ref.view(b, 1, 1, 1)) / tau)
        q = tau * coef
    else:
        p = coef
        q = coef * safe_out
    o, c, kh, kw = weight.shape
    ho, wo = t_out.shape[2], t_out.shape[3]

    def pos_last(x):
        return _np(x.permute(0, 2, 3, 1).reshape(b, ho * wo * o))  # [B, O, H', W'] -> [B, H'W'O]

    w_r = _reversed_flat(weight.to(dtype))
    parts = max(1, min(kn.num_threads(), b))
    grad_w_part = np.zeros((parts,) + w_r.shape, dtype=w_r.dtype)
    grad_t = np.zeros(tuple(t_in.shape), dtype=w_r.dtype)
    kn.backward_kernel(
        _np(t_in), w_r, pos_last(t_out), pos_last(p), pos_last(q), _np(ref), kernel == "exp", float(tau),
        kh, kw, stride[0], stride[1], padding[0], padding[1], ho, wo, grad_t, grad_w_part,
    )
    grad_w = torch.from_numpy(grad_w_part.sum(0)).reshape(c, kh, kw, o).permute(3, 0, 1, 2).flip(3)
    grad_b = bias_grad(coef, t_out, kernel, tau) if bias is not None else None
    return torch.from_numpy(grad_t), grad_w, grad_b
