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
(``fusable``); gradients equal the unfused layers' up to float32 summation order
(``tests/layers/test_batchnorm_neuron.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from deepspike.coding.rate import time_invariant
from deepspike.neurons.fused import fused_multistep, fused_supported, recomputed_input_grad, uses_triton
from deepspike.neurons.params import NeuronParams

# Batch-norms whose training-mode statistics are one ``native_batch_norm`` call (as in ``TimeDistributed``; not
# SyncBatchNorm, which gathers them across processes). Parametrised subclasses (tdBN's weight) are included.
_PLAIN_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fusable(bn: nn.Module, x: torch.Tensor, params: NeuronParams) -> bool:
    """Whether ``batch_norm_neuron`` may run ``bn`` (training mode, batch statistics) and a neuron of ``params`` on
    ``x [T, B, C, ...]``: a plain batch-norm without hooks, a gradient to compute, ``x`` not time-invariant (that
    case saves nothing of size T already) and dense, and the numba kernels able to run the neuron on it."""
    if not isinstance(bn, _PLAIN_BN) or bn._forward_hooks or bn._forward_pre_hooks:
        return False
    if not (bn.training and torch.is_grad_enabled() and x.requires_grad) or time_invariant(x) or x.dim() < 3:
        return False
    flat = x.flatten(0, 1)
    dense = flat.is_contiguous() or (flat.dim() == 4 and flat.is_contiguous(memory_format=torch.channels_last))
    return dense and not uses_triton(x) and fused_supported(x, params)


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


class _BatchNormNeuron(torch.autograd.Function):
    """``(x [T*B, C, ...], gamma, beta) -> (s, v_T)`` (module docstring); ``steps`` = T."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, steps, params, pool):
        mean, var = torch.batch_norm_update_stats(x, running_mean, running_var, momentum)  # biased var; running: not
        invstd = torch.rsqrt(var + eps)
        y = _normalised(x, weight, bias, mean, invstd).unflatten(0, (steps, -1))  # [T, B, C, ...]
        kernel, channels_last = (None, False) if pool is None else (pool[:2], pool[2])
        s, v = fused_multistep(y, params, inplace=True, pool=kernel, pool_channels_last=channels_last)  # s over y
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.eps, ctx.steps, ctx.params, ctx.pool = eps, steps, params, pool
        ctx.mark_non_differentiable(v)
        return s, v

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, _g_v):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        y = _normalised(x, weight, bias, mean, invstd).unflatten(0, (ctx.steps, -1))
        kernel, channels_last = (None, False) if ctx.pool is None else (ctx.pool[:2], ctx.pool[2])
        g_y = recomputed_input_grad(y, g_s, ctx.params, kernel, channels_last).flatten(0, 1)  # over y
        mask = [ctx.needs_input_grad[0], weight is not None and ctx.needs_input_grad[1],
                bias is not None and ctx.needs_input_grad[2]]
        # dL/dx over dL/dy: torch's kernel reduces dL/dy per channel first, then writes dL/dx element by element
        # from dL/dy and x at the same index (the aliasing is exact, tested against the unfused layers)
        g_x, g_w, g_b = torch.ops.aten.native_batch_norm_backward.out(
            g_y, x, weight, None, None, mean, invstd, True, ctx.eps, mask,
            out0=g_y, out1=torch.empty_like(mean), out2=torch.empty_like(mean))
        return (g_x if mask[0] else None), (g_w if mask[1] else None), (g_b if mask[2] else None), *[None] * 7


def batch_norm_neuron(x: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm, params: NeuronParams,
                      pool: tuple[int, int] | None = None, pool_channels_last: bool = False):
    """``neuron(bn(x))`` for ``x [T, B, C, ...]`` (``fusable``), saving only ``x`` (module docstring).

    Returns ``(s, v_T)``: the spikes ``[T, B, C, ...]`` (with ``pool = (kh, kw)``: their tiling average pooling
    ``[T, B, C, H/kh, W/kw]``, channels-last when ``pool_channels_last``, as ``fused_multistep``) and the final
    membrane ``[B, C, ...]`` (no gradient; the neuron starts from ``v0 = 0``). ``bn``'s running statistics and
    ``num_batches_tracked`` move as its own forward would move them.
    """
    momentum = _momentum(bn)
    track = bn.track_running_stats and bn.running_mean is not None
    pool_arg = None if pool is None else (int(pool[0]), int(pool[1]), bool(pool_channels_last))
    return _BatchNormNeuron.apply(x.flatten(0, 1), bn.weight, bn.bias, bn.running_mean if track else None,
                                  bn.running_var if track else None, momentum, bn.eps, x.shape[0], params, pool_arg)
