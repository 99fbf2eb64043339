"""Pure-torch backend of the closed-form TTFS layer on images: unfold in batch chunks + row solver.

Every receptive field becomes one row of input times (zero padding = +inf = "no spike", never t = 0),
the bias is an extra input spike at t = 0, and ``causal_set.solve_rows`` / ``gradients.grad_rows`` do the
rest. Unfolded columns are built for a few samples at a time so that ``samples * H'W' * fan_in`` stays
within ``chunk_elements`` (at least one sample).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deepspike.ttfs.causal_set import solve_rows
from deepspike.ttfs.gradients import grad_rows


def out_size(size: int, k: int, stride: int, pad: int) -> int:
    """Output length of a convolution: ``floor((size + 2 pad - k) / stride) + 1``."""
    return (size + 2 * pad - k) // stride + 1


def receptive_rows(t_chunk, kh, kw, stride, padding, with_bias):
    """[b, C, H, W] times -> [b*L, C*kh*kw (+1)] rows of receptive-field times, +inf padding."""
    ph, pw = padding
    t_pad = F.pad(t_chunk, (pw, pw, ph, ph), value=math.inf)
    cols = F.unfold(t_pad, (kh, kw), stride=stride)  # [b, C*kh*kw, L]
    rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])  # [b*L, C*kh*kw]
    if with_bias:
        rows = torch.cat([rows, torch.zeros_like(rows[:, :1])], dim=1)  # bias spike at t = 0
    return rows


def flat_weight(weight, bias):
    """[O, C, kh, kw] weights (+ [O] bias) -> [O, C*kh*kw (+1)], the columns of ``receptive_rows``."""
    w2 = weight.reshape(weight.shape[0], -1)  # [O, C*kh*kw]
    return w2 if bias is None else torch.cat([w2, bias.unsqueeze(1)], dim=1)


def samples_per_chunk(t_in, weight, stride, padding, chunk_elements):
    """``(samples, H', W')``: how many samples' receptive rows fit in ``chunk_elements`` (at least one)."""
    o, c, kh, kw = weight.shape
    ho = out_size(t_in.shape[2], kh, stride[0], padding[0])
    wo = out_size(t_in.shape[3], kw, stride[1], padding[1])
    return max(1, chunk_elements // max(1, ho * wo * (c * kh * kw + 1))), ho, wo


def forward(t_in, weight, bias, stride, padding, kernel, theta, tau, chunk_elements):
    """Spike times and slopes [B, O, H', W'] of a conv TTFS layer; see ``causal_set.solve_rows``."""
    b_all = t_in.shape[0]
    o = weight.shape[0]
    per, ho, wo = samples_per_chunk(t_in, weight, stride, padding, chunk_elements)
    w2 = flat_weight(weight, bias).detach()
    t_out = t_in.new_empty((b_all, o, ho, wo))
    slope = t_in.new_empty((b_all, o, ho, wo))
    for b0 in range(0, b_all, per):
        b1 = min(b_all, b0 + per)
        kh, kw = weight.shape[2], weight.shape[3]
        rows = receptive_rows(t_in[b0:b1].detach(), kh, kw, stride, padding, bias is not None)
        to, sl = solve_rows(rows, w2, kernel, theta, tau, chunk_elements)  # [b*L, O]
        t_out[b0:b1] = to.reshape(b1 - b0, ho, wo, o).permute(0, 3, 1, 2)
        slope[b0:b1] = sl.reshape(b1 - b0, ho, wo, o).permute(0, 3, 1, 2)
    return t_out, slope


def backward(t_in, weight, bias, stride, padding, kernel, tau, t_out, slope, grad_out, chunk_elements,
             need_input_grad=True):
    """Exact VJP of ``forward``: returns ``(grad_t [B,C,H,W] | None, grad_w [O,C,kh,kw], grad_bias [O] | None)``;
    ``grad_t`` is None unless ``need_input_grad``."""
    b_all, c, h, w = t_in.shape
    o, _, kh, kw = weight.shape
    ph, pw = padding
    per, ho, wo = samples_per_chunk(t_in, weight, stride, padding, chunk_elements)
    w2 = flat_weight(weight, bias)
    grad_t = torch.zeros_like(t_in)
    grad_w2 = torch.zeros_like(w2)
    for b0 in range(0, b_all, per):
        b1 = min(b_all, b0 + per)
        rows = receptive_rows(t_in[b0:b1], kh, kw, stride, padding, bias is not None)

        def as_rows(x, b0=b0, b1=b1):
            return x[b0:b1].permute(0, 2, 3, 1).reshape(-1, o)  # [b, O, H', W'] -> [b*L, O]

        g_rows, g_w = grad_rows(
            rows, w2, as_rows(t_out), as_rows(slope), as_rows(grad_out), kernel, tau, chunk_elements
        )
        grad_w2 += g_w
        g_cols = g_rows[:, : c * kh * kw].reshape(b1 - b0, ho * wo, c * kh * kw).transpose(1, 2)
        g_pad = F.fold(g_cols, (h + 2 * ph, w + 2 * pw), (kh, kw), stride=stride)  # adjoint of unfold
        grad_t[b0:b1] = g_pad[:, :, ph : ph + h, pw : pw + w]
    grad_w = grad_w2[:, : c * kh * kw].reshape(weight.shape)
    grad_b = grad_w2[:, -1].clone() if bias is not None else None
    return (grad_t if need_input_grad else None), grad_w, grad_b

