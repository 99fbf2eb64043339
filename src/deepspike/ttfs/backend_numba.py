"""Numba backend of the closed-form TTFS layer on images (wraps ``kernels_numba``), same API as
``backend_torch``: ``forward(...) -> (t_out, slope)`` and ``backward(...) -> (grad_t, grad_w, grad_b)``.

The kernels work channels-last, so the times this backend returns are channels-last views of the kernels'
output ([B, O, H', W'] with ``O`` the fastest axis; ``torch.channels_last`` strides); a channels-last input
(the previous numba layer's output, or a max-pool of it) reaches the kernel without a copy.
"""

from __future__ import annotations

import numpy as np
import torch

from deepspike.core.threads import numba_threads, run_numba_kernel
from deepspike.ttfs import kernels_numba as kn
from deepspike.ttfs.backend_torch import out_size
from deepspike.ttfs.causal_set import EXP_SPAN_LIMIT
from deepspike.ttfs.sort_numba import argsort_rows


def _channels_last_rows(x: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] -> numpy [B, H*W*C] (no copy when ``x`` is already channels-last)."""
    return x.detach().permute(0, 2, 3, 1).contiguous().reshape(x.shape[0], -1).numpy()


def _as_image(rows: np.ndarray, b: int, h: int, w: int, c: int) -> torch.Tensor:
    """numpy [B, H*W*C] -> torch [B, C, H, W] channels-last view of the same memory."""
    return torch.from_numpy(rows).view(b, h, w, c).permute(0, 3, 1, 2)


def forward(t_in, weight, bias, stride, padding, kernel, theta, tau, chunk_elements=None):
    """Spike times and slopes [B, O, H', W'] (channels-last) via the numba event sweep (chunk_elements is
    unused: the sweep holds one sort order of the inputs and 2 * O*H'*W' running sums per thread)."""
    b, c, h, w = t_in.shape
    o, _, kh, kw = weight.shape
    ho, wo = out_size(h, kh, stride[0], padding[0]), out_size(w, kw, stride[1], padding[1])
    rows = _channels_last_rows(t_in)
    w_r = _reversed_flat(weight.to(t_in.dtype))
    b_np = bias.detach().to(t_in.dtype).contiguous().numpy() if bias is not None else np.zeros(o, w_r.dtype)
    t_out = np.full((b, ho * wo * o), np.inf, dtype=w_r.dtype)
    slope = np.zeros((b, ho * wo * o), dtype=w_r.dtype)
    run_numba_kernel(
        kn.forward_kernel, rows, argsort_rows(rows), w, c, w_r, b_np, bias is not None, kh, kw, stride[0],
        stride[1], padding[0], padding[1], ho, wo, kernel == "exp", float(theta), float(tau), t_out, slope,
    )
    return _as_image(t_out, b, ho, wo, o), _as_image(slope, b, ho, wo, o)


def _reversed_flat(weight: torch.Tensor) -> np.ndarray:
    """[O, C, kh, kw] -> flat [C*kh*kw*O] in layout [C, kh, kw reversed, O] (see ``kernels_numba``)."""
    return weight.detach().flip(3).permute(1, 2, 3, 0).reshape(-1).contiguous().numpy()


def span_ok(t_in: torch.Tensor, t_out: torch.Tensor, tau: float) -> bool:
    """True when every sample's finite times span little enough for the separable exp backward (it multiplies
    exp((t_i - ref)/tau) by exp(-(t_out - ref)/tau): both must stay in range)."""
    b = t_in.shape[0]
    fin_in = torch.where(torch.isfinite(t_in), t_in, torch.full_like(t_in, np.inf)).reshape(b, -1)
    fin_out = torch.where(torch.isfinite(t_out), t_out, torch.full_like(t_out, -np.inf)).reshape(b, -1)
    span = (fin_out.max(1).values - fin_in.min(1).values) / tau
    span = torch.where(torch.isfinite(span), span, torch.zeros_like(span))
    return bool((span <= EXP_SPAN_LIMIT.get(t_in.dtype, 80.0)).all())


def backward(t_in, weight, bias, stride, padding, kernel, tau, t_out, slope, grad_out, chunk_elements=None,
             need_input_grad=True):
    """Exact VJP via the numba masked kernel; ``(grad_t [B,C,H,W] | None, grad_w [O,C,kh,kw], grad_b | None)``;
    ``grad_t`` is channels-last, and None unless ``need_input_grad``."""
    b, c, h, w = t_in.shape
    o, _, kh, kw = weight.shape
    ho, wo = t_out.shape[2], t_out.shape[3]
    rows = _channels_last_rows(t_in)
    w_r = _reversed_flat(weight.to(t_in.dtype))
    parts = max(1, min(numba_threads(), b))
    grad_w_part = np.zeros((parts,) + w_r.shape, dtype=w_r.dtype)
    grad_b_part = np.zeros((parts, o), dtype=w_r.dtype)
    grad_t = np.zeros(rows.shape if need_input_grad else (0, 0), dtype=w_r.dtype)
    run_numba_kernel(
        kn.backward_kernel, rows, w, c, w_r, _channels_last_rows(t_out), _channels_last_rows(slope),
        _channels_last_rows(grad_out.to(t_in.dtype)), kernel == "exp", float(tau), kh, kw, stride[0], stride[1],
        padding[0], padding[1], ho, wo, need_input_grad, grad_t, grad_w_part, grad_b_part,
    )
    grad_w = torch.from_numpy(grad_w_part.sum(0)).reshape(c, kh, kw, o).permute(3, 0, 1, 2).flip(3)
    grad_b = torch.from_numpy(grad_b_part.sum(0)) if bias is not None else None
    return (_as_image(grad_t, b, h, w, c) if need_input_grad else None), grad_w, grad_b
