"""Batch-norm and the spiking neuron after it as one autograd node that saves only the batch-norm's input.

A conv-BN-neuron layer of a directly trained SNN keeps three ``[T, B, C, H, W]`` tensors from forward to
backward: the convolution's spike input (``uint8``, ``layers.spike_storage``), the batch-norm's input ``x``
(float32, for its own backward) and the neuron's pre-reset membrane ``h`` (float32). ``h`` is a function of
``x``: with the training-mode statistics of the whole ``[T*B]`` batch (per channel, over T, B, H, W),

    y = gamma (x - mean) / sqrt(var + eps) + beta,    h_t = k v_{t-1} + y_t,    s_t = H(h_t - V_th),
    v_t = reset(h_t, s_t)

so ``batch_norm_neuron`` saves ``x``, ``gamma``, ``beta`` and the per-channel ``mean`` and ``1 / sqrt(var + eps)``
and rebuilds the rest in backward, like the in-place activated batch-norm of ANNs (Rota Bulo et al., CVPR 2018),
which rebuilds from the activation's output instead:

* forward: torch's statistics kernel (``batch_norm_update_stats``: mean, biased variance, and the running
  statistics moved with the unbiased one, as ``nn.BatchNorm`` moves them), ``y = x alpha + b`` per channel in one
  pass, then the fused neuron, which writes the spikes over ``y`` (or, with a tiling ``pool``, writes the pooled
  spikes) and stores no membrane;
* backward: ``y`` again by the same operations on the saved ``x`` (bit for bit the forward's ``y``), ``dL/dy``
  from the neuron's backward kernel, which recomputes ``h`` from ``y`` block by block in cache
  (``neurons.fused.recomputed_input_grad``, written over ``y``), then ``dL/dx`` (written over ``dL/dy``),
  ``dL/dgamma``, ``dL/dbeta`` from torch's batch-norm backward (``native_batch_norm_backward`` with the saved
  statistics). The layer's backward thus allocates one ``[T, B, ...]`` buffer, where the unfused layers allocate
  two (``dL/dy`` and ``dL/dx``).

One float32 ``[T, B, ...]`` tensor less per layer from forward to backward (the membrane), for one more
elementwise pass in backward. ``y`` may differ from ``F.batch_norm``'s in the last bit (torch's kernel rounds
``x alpha + b`` its own way), as a spike may where the membrane is within that rounding of the threshold.
``SpikingSequential`` runs a ``TimeDistributed`` batch-norm and the neuron after it this way when both may be fused
(``fusable``): an IF/LIF neuron (with the tiling pooling after it, if any) or a ``LearnableLIF`` (PLIF, learnable
threshold: its kernel saves its input ``y``, so the saving is the same, and its decay and threshold gradients come
from the same recomputation, ``neurons.fused_learnable.recomputed_learnable_grads``); gradients equal the unfused
layers' up to float32 summation order (``tests/layers/test_batchnorm_neuron.py``).

That is the general path. Dense CPU steps (contiguous or channels-last) take the one-pass path instead
(``layers.batchnorm_neuron_onepass``) when the neuron keeps its leak gradient (or is learnable): the same node,
saving the same ``x``, with the statistics, the affine map, the neuron (and its fused pooling), the spikes'
``uint8`` codes (attached to ``s`` for the next convolution: ``layers.spike_storage``) and batch-norm's backward
sums in numba kernels that read each large tensor once. A bfloat16 ``x`` (CPU autocast) runs only there, computed
in float32; where that path cannot run it (a neuron without ``leak_grad``), the unfused layers run it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepspike.coding.rate import time_invariant
from deepspike.core.compile_support import eager_under_compile
from deepspike.core.first_order import first_order_backward
from deepspike.layers.batchnorm_neuron_onepass import (
    batch_statistics,
    channel_maps,
    onepass_backward,
    onepass_forward,
    onepass_supported,
)
from deepspike.layers.spike_storage import attach_codes
from deepspike.layers.time_distributed import PLAIN_BATCH_NORMS
from deepspike.neurons.fused import fused_multistep, fused_supported, recomputed_input_grad, uses_triton
from deepspike.neurons.fused_learnable import (
    learnable_fused_supported,
    learnable_spikes_over_input,
    recomputed_learnable_grads,
)
from deepspike.neurons.params import NeuronParams


@dataclass(frozen=True)
class NeuronRun:
    """The neuron after the batch-norm: ``params`` (reset, surrogate, and the decay/threshold unless learnt);
    ``pool = (kh, kw, channels_last)``: the tiling average pooling fused after a fixed-parameter neuron (None: no
    pooling); ``learnable``: a ``LearnableLIF`` (PLIF and/or learnable threshold: ``decay`` and ``threshold``
    tensors are passed in, ``()`` or ``[C, 1, ...]``), with ``decay_input`` (``c = 1 - k``, PLIF). A learnable
    neuron takes no fused pooling (the kernels' per-block parameter gradients assume blocks of
    ``fused_learnable_kernels.blocks_of`` columns, not pooling bands)."""

    params: NeuronParams
    pool: tuple[int, int, bool] | None = None
    learnable: bool = False
    decay_input: bool = False

    def __post_init__(self) -> None:
        if self.learnable and self.pool is not None:
            raise ValueError("a learnable neuron's run takes no fused pooling")


def fusable(bn: nn.Module, x: torch.Tensor, run: NeuronRun) -> bool:
    """Whether ``batch_norm_neuron`` may run ``bn`` (training mode, batch statistics) and the neuron ``run`` on
    ``x [T, B, C, ...]``: a plain batch-norm without hooks, a gradient to compute, ``x`` dense, the numba kernels
    able to run the neuron on it, and more than one value per channel in ``[T*B, C, ...]`` (with one, torch's
    batch-norm raises, and so the unfused path does). A time-invariant ``x`` (direct encoding: one ``[B, ...]`` step
    repeated) and a bfloat16 ``x`` (under autocast) only on the one-pass path: it reads a repeated input's one step
    (the general path would expand it T times) and computes a bfloat16 input in float32 (the general path is float
    only)."""
    if not isinstance(bn, PLAIN_BATCH_NORMS) or bn._forward_hooks or bn._forward_pre_hooks:
        return False
    if not (bn.training and torch.is_grad_enabled() and x.requires_grad) or x.dim() < 3:
        return False
    if x.numel() <= x.shape[2]:  # one value per channel (or none): torch's batch-norm refuses it, so should we
        return False
    repeated = time_invariant(x)
    if repeated or x.dtype == torch.bfloat16:
        if not onepass_supported(x[0] if repeated else x.flatten(0, 1), run.params, run.learnable, run.pool):
            return False
    else:
        flat = x.flatten(0, 1)
        dense = flat.is_contiguous() or (flat.dim() == 4 and flat.is_contiguous(memory_format=torch.channels_last))
        if not dense or uses_triton(x):
            return False
    # what the neuron kernels compute on (float32 values for bfloat16; empty when x is)
    probe = x.new_ones(min(x.numel(), 1), dtype=torch.float32) if x.dtype == torch.bfloat16 else x
    return learnable_fused_supported(probe, run.params) if run.learnable else fused_supported(probe, run.params)


def _momentum(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """The running statistics' update factor of ``bn``'s next training forward, counting the batch as
    ``nn.BatchNorm`` does (``momentum``, or ``1 / num_batches_tracked`` when it is None)."""
    if not bn.track_running_stats or bn.num_batches_tracked is None:
        return 0.0 if bn.momentum is None else bn.momentum
    bn.num_batches_tracked.add_(1)
    return 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum


def _normalised(x: torch.Tensor, weight, bias, mean: torch.Tensor, invstd: torch.Tensor) -> torch.Tensor:
    """``y = x alpha + b`` per channel, ``alpha = gamma / sqrt(var + eps)``, ``b = beta - mean alpha`` (``x [N, C,
    ...]``, ``y`` in ``x``'s memory format): the same operations in forward and in backward's recomputation, so
    the same ``y`` bit for bit."""
    alpha = invstd if weight is None else invstd * weight
    shift = -mean * alpha if bias is None else bias - mean * alpha
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return torch.addcmul(shift.view(shape), x, alpha.view(shape))


def _neuron_forward(y: torch.Tensor, run: NeuronRun, decay, threshold):
    """``(s, v_T)`` of the neuron on ``y [T, B, ...]`` from rest, the spikes written over ``y`` (without ``pool``)."""
    if run.learnable:
        return learnable_spikes_over_input(y, decay, threshold, run.params, run.decay_input)
    kernel, channels_last = (None, False) if run.pool is None else (run.pool[:2], run.pool[2])
    return fused_multistep(y, run.params, inplace=True, pool=kernel, pool_channels_last=channels_last)


def _neuron_backward(y: torch.Tensor, g_s: torch.Tensor, run: NeuronRun, decay, threshold):
    """``(dL/dy written over y, dL/ddecay, dL/dthreshold)``; the last two None for a fixed neuron."""
    if run.learnable:
        return recomputed_learnable_grads(y, g_s, decay, threshold, run.params, run.decay_input)
    kernel, channels_last = (None, False) if run.pool is None else (run.pool[:2], run.pool[2])
    return recomputed_input_grad(y, g_s, run.params, kernel, channels_last), None, None


def _general_forward(x, weight, bias, decay, threshold, stats, steps: int, run: NeuronRun):
    """``(s, v_T, mean, invstd)`` by torch's statistics kernel, ``addcmul`` and the neuron kernel (module
    docstring); ``stats = (running_mean, running_var, momentum, eps)``."""
    running_mean, running_var, momentum, eps = stats
    mean, var = torch.batch_norm_update_stats(x, running_mean, running_var, momentum)  # biased var; running: not
    invstd = torch.rsqrt(var + eps)
    y = _normalised(x, weight, bias, mean, invstd).unflatten(0, (steps, -1))  # [T, B, C, ...]
    s, v = _neuron_forward(y, run, decay, threshold)
    return s, v, mean, invstd


def _general_backward(g_s, x, weight, bias, mean, invstd, decay, threshold, eps: float, steps: int, run: NeuronRun,
                      mask: list[bool]):
    """``(dL/dx, dL/dgamma, dL/dbeta, dL/ddecay, dL/dthreshold)`` by recomputation (module docstring)."""
    y = _normalised(x, weight, bias, mean, invstd).unflatten(0, (steps, -1))
    g_y, g_decay, g_threshold = _neuron_backward(y, g_s, run, decay, threshold)  # dL/dy over y
    # dL/dx over dL/dy: torch's kernel reduces dL/dy per channel first, then writes dL/dx element by element
    # from dL/dy and x at the same index (the aliasing is exact, tested against the unfused layers)
    g_x, g_w, g_b = torch.ops.aten.native_batch_norm_backward.out(
        g_y.flatten(0, 1), x, weight, None, None, mean, invstd, True, eps, mask,
        out0=g_y.flatten(0, 1), out1=torch.empty_like(mean), out2=torch.empty_like(mean))
    return g_x, g_w, g_b, g_decay, g_threshold


class _BatchNormNeuron(torch.autograd.Function):
    """``(x [T*B, C, ...], gamma, beta, decay, threshold) -> (s, v_T, codes)`` (module docstring); ``steps`` = T;
    ``repeated``: ``x`` is one step ``[B, C, ...]`` standing for T copies (one-pass path only); ``codes``: the
    spikes as ``uint8`` from the one-pass path (``batchnorm_neuron_onepass``), else None."""

    @staticmethod
    def forward(ctx, x, weight, bias, decay, threshold, running_mean, running_var, momentum, eps, steps, run,
                repeated):
        ctx.onepass = repeated or onepass_supported(x, run.params, run.learnable, run.pool)
        ctx.rows = 1 if repeated else steps
        codes = None
        if ctx.onepass:
            mean, var = batch_statistics(x, running_mean, running_var, momentum, steps if repeated else 1)
            invstd = torch.rsqrt(var + eps)
            alpha, shift = channel_maps(weight, bias, mean, invstd)
            s, v, codes = onepass_forward(x.unflatten(0, (ctx.rows, -1)), alpha, shift, run.params, decay, threshold,
                                          run.decay_input, steps, run.pool)
        else:
            s, v, mean, invstd = _general_forward(x, weight, bias, decay, threshold,
                                                  (running_mean, running_var, momentum, eps), steps, run)
        ctx.save_for_backward(x, weight, bias, mean, invstd, decay, threshold)
        ctx.eps, ctx.steps, ctx.run = eps, steps, run
        ctx.mark_non_differentiable(v, *([] if codes is None else [codes]))
        return s, v, codes

    @staticmethod
    @first_order_backward("the fused batch-norm + neuron kernel (layers.batchnorm_neuron); "
                          "set DEEPSPIKE_FUSED=0 for batch-norm and neuron under autograd")
    def backward(ctx, g_s, _g_v, _g_codes):
        x, weight, bias, mean, invstd, decay, threshold = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], weight is not None and ctx.needs_input_grad[1],
                bias is not None and ctx.needs_input_grad[2]]
        run: NeuronRun = ctx.run
        if ctx.onepass:
            g_x, g_w, g_b, g_decay, g_threshold = onepass_backward(
                x.unflatten(0, (ctx.rows, -1)), g_s, weight, bias, mean, invstd, run.params, decay, threshold,
                run.decay_input, ctx.needs_input_grad[4], run.pool)
            g_x = g_x.flatten(0, 1)
        else:
            g_x, g_w, g_b, g_decay, g_threshold = _general_backward(g_s, x, weight, bias, mean, invstd, decay,
                                                                    threshold, ctx.eps, ctx.steps, run, mask)
        grads = [g if needed else None for g, needed in zip((g_x, g_w, g_b), mask, strict=True)]
        g_decay = g_decay if ctx.needs_input_grad[3] else None
        g_threshold = g_threshold if ctx.needs_input_grad[4] else None
        return *grads, g_decay, g_threshold, *[None] * 7


@eager_under_compile  # under torch.compile: one graph break, the autograd Function run eagerly
def batch_norm_neuron(x: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm, run: NeuronRun,
                      decay: torch.Tensor | None = None, threshold: torch.Tensor | None = None):
    """``neuron(bn(x))`` for ``x [T, B, C, ...]`` (``fusable``), saving only ``x`` (module docstring).

    Returns ``(s, v_T)``: the spikes ``[T, B, C, ...]`` (with ``run.pool``: their tiling average pooling
    ``[T, B, C, H/kh, W/kw]``, as ``fused_multistep``) and the final membrane ``[B, C, ...]`` (no gradient; the
    neuron starts from ``v0 = 0``). ``decay``, ``threshold``: a learnable neuron's (``run.learnable``), as
    ``LearnableLIF`` passes them to ``learnable_multistep``; their gradients flow back. ``bn``'s running
    statistics and ``num_batches_tracked`` move as its own forward would move them.
    """
    momentum = _momentum(bn)
    track = bn.track_running_stats and bn.running_mean is not None
    repeated = time_invariant(x)  # direct encoding: the one step stands for T copies
    s, v, codes = _BatchNormNeuron.apply(x[0] if repeated else x.flatten(0, 1), bn.weight, bn.bias, decay, threshold,
                                         bn.running_mean if track else None, bn.running_var if track else None,
                                         momentum, bn.eps, x.shape[0], run, repeated)
    return (s if codes is None else attach_codes(s, codes, 1)), v
