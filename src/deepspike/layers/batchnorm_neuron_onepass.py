"""The one-pass path of ``layers.batchnorm_neuron`` on dense CPU steps (contiguous or channels-last): batch-norm's
statistics, its affine map, the neuron, the spikes' ``uint8`` codes and batch-norm's backward reductions in three
numba kernels (``batchnorm_neuron_kernels``) instead of separate passes over the ``[T, B, C, H, W]`` tensors.

Per layer and training step, the general path (torch's statistics kernel, ``addcmul`` for ``y``, the neuron
kernel, a packing pass for the next convolution's ``uint8`` input, and in backward ``addcmul`` again, the neuron
kernel and torch's two-pass batch-norm backward) reads or writes ``[T, B, ...]`` float32 tensors 13 times; this
path 7 times: statistics (read ``x``); forward (read ``x``, write ``s`` and the codes); backward (read ``x`` and
``dL/ds``, write ``dL/dy``, and sum ``dL/dy`` and ``dL/dy x`` per channel on the way); input gradient (read
``dL/dy`` and ``x``, write ``dL/dx`` over ``dL/dy``). With ``M = T B H W`` values per channel, ``alpha = gamma
invstd``, ``G1 = sum dL/dy``, ``G2 = sum dL/dy x``::

    dL/dbeta = G1,   dL/dgamma = invstd (G2 - mean G1) = sum dL/dy xhat,
    dL/dx = alpha (dL/dy - G1 / M - xhat dL/dgamma / M) = alpha dL/dy + a x + b,
    a = -alpha invstd dL/dgamma / M,   b = alpha (invstd mean dL/dgamma - G1) / M

(torch's ``native_batch_norm_backward`` in training mode, with the sums in float64). The statistics are the
biased variance from per-plane float64 sums, ``var = S2 / M - mean^2``; the running statistics move as
``nn.BatchNorm`` moves them (unbiased variance). The neuron is a ``LearnableLIF`` (PLIF, learnable threshold) or a
fixed IF/LIF whose temporal gradient keeps its leak (``leak_grad``, the default); both run the fused learnable
kernels' rows, whose update is the fixed kernels' float for float. A fixed neuron may have the tiling average
pooling after it fused (``NeuronRun.pool``): the blocks are then whole pooling bands, the forward writes only the
pooled map (``fused_kernels``' pooling rows, so bit for bit ATen's average pooling) and the backward spreads the
pooled gradient over the windows; the spike map and its gradient are never stored.

A bfloat16 ``x`` (a convolution's output under CPU autocast) goes to the same kernels as its bits
(``neurons.bfloat16_rows``): they compute in float32 (statistics, ``y``, the membrane, the decay and threshold),
so the spikes, ``v_T`` and the running statistics are the float32 path's on ``x.float()`` bit for bit. What they
write is bfloat16: the spikes (and their codes), ``dL/dy`` (rounded once; ``G1``, ``G2`` sum the rounded values,
so ``dL/dx`` is batch-norm's backward of the ``dL/dy`` it stores) and ``dL/dx``. Saved for backward: ``x`` in
bfloat16, 2 bytes a value, where the unfused layers under autocast keep ``x`` and the neuron's bfloat16 input.
"""

from __future__ import annotations

import math

import torch

from deepspike.core.threads import run_numba_kernel
from deepspike.neurons.fused import _grad_rows, _like_steps, _out_step, _pool_shape, _rows, load_once
from deepspike.neurons.fused_constants import RESET_CODES, surrogate_constants
from deepspike.neurons.fused_learnable import param_grad_buffers, param_grads, param_rows
from deepspike.neurons.params import NeuronParams

COMPUTED_IN = {torch.float32: torch.float32, torch.float64: torch.float64, torch.bfloat16: torch.float32}
_KERNELS: list = []  # [batchnorm_neuron_kernels] once imported, [None] without numba


def _load_kernels():
    from deepspike.layers import batchnorm_neuron_kernels

    return batchnorm_neuron_kernels


def _kernels():
    return load_once(_KERNELS, _load_kernels)


def _channels_last(x: torch.Tensor) -> bool:
    """``x [M, C, H, W]`` is channels-last and not also contiguous (where both hold, the NCHW order is the same)."""
    return not x.is_contiguous() and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def onepass_supported(x: torch.Tensor, params: NeuronParams, learnable: bool,
                      pool: tuple[int, int, bool] | None = None) -> bool:
    """Whether this path runs the batch-norm's input ``x [T*B, C, ...]``: contiguous or channels-last CPU
    float32/float64/bfloat16, a learnable neuron or a fixed one with ``leak_grad``, and the numba kernels loadable;
    a fused tiling pooling ``pool = (kh, kw, channels_last)`` (``layers.batchnorm_neuron.NeuronRun``) after a fixed
    neuron on ``[T*B, C, H, W]`` with H, W multiples of the window, in either layout. (Session 19 sent channels-last
    float32 pooled layers to the general path, a little faster per layer then; since session 20's kernel change the
    two are within 0.3-1.0 ms of each other there (``benchmarks/results/speed2/session19_scripts/pooled_paths.py.txt``),
    whole VGG steps as fast or faster, and BPTT's peak tensors of the VGG-style net 36% smaller at T = 16:
    ``benchmarks/RESULTS.md``, session 20.)"""
    if not (learnable or params.leak_grad) or x.dim() < 2 or x.device.type != "cpu":
        return False
    if pool is not None and (learnable or x.dim() != 4 or x.shape[2] % pool[0] or x.shape[3] % pool[1]):
        return False
    dense = x.is_contiguous() or _channels_last(x)
    return x.dtype in COMPUTED_IN and dense and _kernels() is not None


def _computed(step: torch.Tensor) -> torch.Tensor:
    """``step`` for a float32/float64 step; for a bfloat16 one, an uninitialised float32 tensor of its shape and
    strides: what the neuron helpers (``fused_learnable.param_rows`` ...) take for the computation's dtype and the
    step's layout."""
    dtype = COMPUTED_IN[step.dtype]
    return step if dtype == step.dtype else torch.empty_strided(step.shape, step.stride(), dtype=dtype)


def _array(t: torch.Tensor):
    """The numpy view the kernels take: ``t``'s own for float32/float64, its bits (``uint16``) for bfloat16
    (``neurons.bfloat16_rows``)."""
    return (t.view(torch.uint16) if t.dtype == torch.bfloat16 else t).numpy()


def _plane(step: torch.Tensor) -> int:
    """The kernels' ``P`` for one dense step ``[B, C, ...]``: ``H W`` (1 for ``[B, C]``) when contiguous, where column
    ``j`` is channel ``(j // P) % C``; 1 for channels-last ``[B, H, W, C]`` order, where it is channel ``j % C``."""
    return 1 if _channels_last(step) else step[0, 0].numel()


def batch_statistics(x: torch.Tensor, running_mean, running_var, momentum: float,
                     copies: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, biased variance)`` per channel of ``x [M, C, ...]`` (dense) in its computation's dtype
    (``COMPUTED_IN``: float32 for bfloat16), from float64
    sums (module docstring); ``running_mean``/``running_var`` (or None) moved by ``momentum`` as ``nn.BatchNorm``
    moves them, with the unbiased variance. ``copies``: the batch is that many copies of ``x`` (a repeated input:
    the same mean and biased variance, a count ``copies`` times larger in the unbiased correction)."""
    n_ch = x.shape[1]
    count = x.numel() // n_ch
    s1 = torch.empty(n_ch, dtype=torch.float64)
    s2 = torch.empty(n_ch, dtype=torch.float64)
    flat = _array(_rows(x.detach(), 1)[0])
    plane = _plane(x)
    if plane == 1:  # channels-last or [M, C]: channel j % C
        run_numba_kernel(_kernels().channel_stats_interleaved, flat, n_ch, s1.numpy(), s2.numpy())
    else:
        run_numba_kernel(_kernels().channel_stats, flat, plane, n_ch, s1.numpy(), s2.numpy())
    mean = s1 / count
    var = (s2 / count - mean * mean).clamp_(min=0.0)
    if running_mean is not None:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            unbiased = var * (copies * count / max(copies * count - 1, 1))
            running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
    return mean.to(COMPUTED_IN[x.dtype]), var.to(COMPUTED_IN[x.dtype])


def channel_maps(weight, bias, mean: torch.Tensor, invstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha, shift)`` ``[C]`` of ``y = alpha x + shift``: ``alpha = gamma invstd``, ``shift = beta - mean alpha``
    (no ``gamma``/``beta``: 1 and 0); the same operations in forward and backward, so the same ``y`` bit for bit."""
    alpha = invstd if weight is None else invstd * weight.detach()
    shift = -mean * alpha if bias is None else bias.detach() - mean * alpha
    return alpha.contiguous(), shift.contiguous()


def _neuron_rows(params: NeuronParams, step: torch.Tensor, decay, threshold):
    """The kernels' decay and threshold: a learnable neuron's tensors (``param_rows``), else the fixed values."""
    if decay is None:
        return (torch.tensor([params.decay], dtype=step.dtype), torch.tensor([params.threshold], dtype=step.dtype))
    return param_rows(decay, step), param_rows(threshold, step)


def onepass_forward(x: torch.Tensor, alpha: torch.Tensor, shift: torch.Tensor, params: NeuronParams, decay,
                    threshold, decay_input: bool, steps: int, pool: tuple[int, int, bool] | None = None):
    """``(s [T, B, ...], v_T [B, ...], codes)`` of the neuron on ``y = alpha x + shift`` from rest, for
    ``x [T, B, C, ...]`` or ``[1, B, C, ...]`` (the same input at each of the T = ``steps`` steps; dense steps,
    contiguous or channels-last); ``s`` (``x``'s dtype) and ``v_T`` (the computation's: float32 for bfloat16) in
    the steps' layout; ``codes`` the spikes as ``uint8`` (``s``'s shape and strides), None where a spike is not 0 or 1
    (a NaN input). With ``pool`` (``onepass_supported``) ``s`` is the spikes' tiling average pooling ``[T, B, C,
    H/kh, W/kw]`` (channels-last when ``pool[2]`` asks for it, as ``neurons.fused.fused_multistep``), no codes."""
    t, step = steps, x[0]
    out_shape, out_strides = _out_step(step, pool)
    s = _like_steps((t, *out_shape), out_strides, step.device, x.dtype)
    codes = _like_steps((t, *step.shape), step.stride(), step.device, torch.uint8) if pool is None else None
    v = torch.zeros_like(step, dtype=COMPUTED_IN[x.dtype])
    k, th = _neuron_rows(params, _computed(step), decay, threshold)
    exact = run_numba_kernel(_kernels().bn_neuron_forward, _array(_rows(x.detach(), x.shape[0])), alpha.numpy(),
                             shift.numpy(), _plane(step), _rows(v, 1)[0].numpy(), _array(_rows(s, t)),
                             (torch.empty((0, 0), dtype=torch.uint8) if codes is None else _rows(codes, t)).numpy(),
                             k.numpy(), th.numpy(), RESET_CODES[params.reset], decay_input, _pool_shape(step, pool))
    return s, v, codes if exact else None


def _input_grad_maps(g1, g2, alpha, mean, invstd, count: int):
    """``(dL/dgamma, dL/dbeta, a, b)`` from the per-block sums ``g1, g2 [blocks, C]`` (module docstring)."""
    s1, s2 = g1.sum(0), g2.sum(0)  # float64
    mean64, invstd64, alpha64 = mean.double(), invstd.double(), alpha.double()
    g_gamma = invstd64 * (s2 - mean64 * s1)
    a = -alpha64 * invstd64 * g_gamma / count
    b = alpha64 * (invstd64 * mean64 * g_gamma - s1) / count
    return g_gamma, s1, a.to(alpha.dtype), b.to(alpha.dtype)


def onepass_backward(x: torch.Tensor, g_s: torch.Tensor, weight, bias, mean, invstd, params: NeuronParams, decay,
                     threshold, decay_input: bool, want_threshold: bool, pool: tuple[int, int, bool] | None = None):
    """``(dL/dx, dL/dgamma, dL/dbeta, dL/ddecay, dL/dthreshold)`` of ``onepass_forward``'s spikes (its pooled map
    with ``pool``) for ``g_s = dL/ds`` (the batch-norm in training mode with the batch's ``mean``, ``invstd``);
    ``dL/dx`` has ``x``'s shape (``[1, B, ...]`` for a repeated input: the sum over the T copies); the decay's and
    threshold's None for a fixed neuron. One ``[T, B, ...]`` buffer is allocated: ``dL/dy``, then ``dL/dx`` over
    it."""
    t, step = g_s.shape[0], x[0]
    n_ch = x.shape[2]
    kernels = _kernels()
    x2, plane, wide = _rows(x.detach(), x.shape[0]), _plane(step), _computed(step)
    alpha, shift = channel_maps(weight, bias, mean, invstd)
    k, th = _neuron_rows(params, wide, decay, threshold)
    learnable = decay is not None
    gk, gth = param_grad_buffers(decay, threshold, wide, want_threshold) if learnable else (wide.new_zeros(0),) * 2
    pool_shape, (out_shape, out_strides) = _pool_shape(step, pool), _out_step(step, pool)
    blocks = kernels.most_blocks(x2.shape[1], pool_shape)
    g1 = torch.zeros(blocks, n_ch, dtype=torch.float64)
    g2 = torch.zeros(blocks, n_ch, dtype=torch.float64)
    gy = torch.empty((t, x2.shape[1]), dtype=x2.dtype)
    gs = _grad_rows(g_s.to(x.dtype), t, math.prod(out_shape), out_strides, False, step.device)
    code, p1, p2 = surrogate_constants(params.spike_fn.name, params.spike_fn.params)
    run_numba_kernel(kernels.bn_neuron_backward, _array(x2), alpha.numpy(), shift.numpy(), plane, _array(gs),
                     _array(gy), gk.numpy(), gth.numpy(), k.numpy(), th.numpy(), RESET_CODES[params.reset],
                     params.detach_reset, decay_input, code, p1, p2, g1.numpy(), g2.numpy(), pool_shape)
    g_gamma, g_beta, a, b = _input_grad_maps(g1, g2, alpha, mean, invstd, gy.numel() // n_ch)
    repeats = t // x2.shape[0]  # T for a repeated input (its one row's gradient sums the T copies'), else 1
    gx = gy if repeats == 1 else torch.empty_like(x2)
    run_numba_kernel(kernels.bn_input_grad, _array(gy), _array(x2), alpha.numpy(), (a * repeats).numpy(),
                     (b * repeats).numpy(), plane, _array(gx))
    g_decay, g_threshold = param_grads(gk, gth, wide, decay, threshold) if learnable else (None, None)
    g_w = None if weight is None else g_gamma.to(weight.dtype)
    g_b = None if bias is None else g_beta.to(bias.dtype)
    return gx.as_strided(x.shape, (x2.shape[1], *step.stride())), g_w, g_b, g_decay, g_threshold
