"""The fused IF/LIF and learnable-LIF updates as ``torch.library`` custom ops: what ``torch.compile`` runs.

Eager mode runs the autograd Functions ``fused._FusedMultistep`` and ``fused_learnable._FusedLearnable`` (with their
in-place and recompute modes). Dynamo cannot trace them (numba kernels on ``.numpy()`` views), so while it traces
(``torch.compiler.is_compiling()``) ``fused_multistep`` and ``fused_learnable_multistep`` call the ops below instead:
opaque nodes of the graph, with a fake implementation (shapes, dtype and the strides the kernels write) and a
registered backward that is itself a custom op, so ``fullgraph=True`` traces through a neuron. They run the same
kernels on the same inputs (spikes bit for bit eager's, gradients equal), out of place (a custom op's outputs may
not alias its inputs): ``inplace`` is ignored under compilation and the pre-reset membrane ``h`` is saved for
backward, as eager's non-inplace path does::

    lif_multistep(x [T, B, ...], v0 [B, ...]?, P, store_h, pool)   -> s [T, B, ...'], v_T [B, ...], h [T, B, ...] | [0]
    lif_multistep_backward(h, dL/ds, dL/dv_T, dL/dh?, P, pool)     -> dL/dx [T, B, ...], dL/dv0 [B, ...]
    learnable_multistep(x, v0?, k, th, P, decay_input)             -> s [T, B, ...], v_T [B, ...]
    learnable_multistep_backward(x, v0?, k, th, dL/ds, dL/dv_T, P, decay_input, want_th)
                                                                   -> dL/dx, dL/dv0, dL/dk (k's shape), dL/dth

with ``h_t = k v_{t-1} + x_t``, ``s_t = H(h_t - th)`` and the reset of ``neurons.dynamics``; ``[B, ...']`` is one
step, tiling-average-pooled when ``pool = [kh, kw, channels_last]`` (``fused._forward``). ``P`` = the eight fields
of ``NeuronParams`` (``fused.op_params``: plain values Dynamo guards on), rebuilt (cached) inside the op.
``neurons/__init__`` imports this module, so the ops exist wherever ``deepspike.neurons`` is imported.
"""

import functools
import math

import torch
from torch import Tensor

from deepspike.neurons.fused import (
    _backward_kernel,
    _dense_input,
    _dense_steps,
    _forward,
    _grad_rows,
    _like_steps,
    _out_step,
    _pool_shape,
    _rows,
    _with_strides,
)
from deepspike.neurons.fused_learnable import _backward_kernel as _learnable_backward_kernel
from deepspike.neurons.fused_learnable import _forward as _learnable_forward
from deepspike.neurons.fused_learnable import step_rows
from deepspike.neurons.params import NeuronParams


@functools.lru_cache(maxsize=256)
def _params(decay: float, threshold: float, reset: str, surrogate: str, names: tuple, values: tuple,
            detach_reset: bool, leak_grad: bool) -> NeuronParams:
    """The ``NeuronParams`` of ``fused.op_params``' fields (cached: built once per distinct neuron)."""
    return NeuronParams(decay, threshold, reset, surrogate, dict(zip(names, values, strict=True)), detach_reset,
                        leak_grad)


def _rebuilt(spec: tuple) -> NeuronParams:
    """``_params`` of the op's eight parameter arguments (the names a comma-separated string, the values a list)."""
    decay, threshold, reset, surrogate, names, values, detach_reset, leak_grad = spec
    names = tuple(names.split(",")) if names else ()
    return _params(decay, threshold, reset, surrogate, names, tuple(values), detach_reset, leak_grad)


def _pool(pool: list[int]) -> tuple[int, int, bool] | None:
    """``fused``'s ``pool`` argument ``(kh, kw, channels_last)`` from the op's list (empty: no pooling)."""
    return (int(pool[0]), int(pool[1]), bool(pool[2])) if pool else None


def _none_rows(t: Tensor) -> Tensor:
    return torch.empty(0, dtype=t.dtype, device=t.device)


@torch.library.custom_op("deepspike::lif_multistep", mutates_args=())
def lif_multistep(x: Tensor, v0: Tensor | None, decay: float, threshold: float, reset: str, surrogate: str,
                  arg_names: str, arg_values: list[float], detach_reset: bool, leak_grad: bool, store_h: bool,
                  pool: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """``fused._forward`` out of place: ``(s, v_T, h)``, ``h`` an empty ``[0]`` unless ``store_h``."""
    p = _rebuilt((decay, threshold, reset, surrogate, arg_names, arg_values, detach_reset, leak_grad))
    s, v, h = _forward(x, v0, p, store_h=store_h, pool=_pool(pool))
    return s, v, (h if store_h else _none_rows(x))


@lif_multistep.register_fake
def _lif_multistep_fake(x, v0, decay, threshold, reset, surrogate, arg_names, arg_values, detach_reset, leak_grad,
                        store_h, pool):
    """The outputs ``fused._forward`` allocates: each step in the dense layout of ``x``'s steps (``_dense_input``)."""
    _, step = _dense_input(x)
    out_shape, out_strides = _out_step(step, _pool(pool))
    s = _like_steps((x.shape[0], *out_shape), out_strides, x.device)
    v = torch.empty_strided(step.shape, step.stride(), dtype=x.dtype, device=x.device)
    h = _like_steps(x.shape, step.stride(), x.device) if store_h else _none_rows(x)
    return s, v, h


def _dense_membrane(h: Tensor) -> Tensor:
    """The saved ``h [T, B, ...]`` as dense steps (it is, as ``lif_multistep`` wrote it; a copy otherwise)."""
    return h if _dense_steps(h) else h.contiguous()


@torch.library.custom_op("deepspike::lif_multistep_backward", mutates_args=())
def lif_multistep_backward(h: Tensor, g_s: Tensor, g_v: Tensor, g_h: Tensor | None, decay: float, threshold: float,
                           reset: str, surrogate: str, arg_names: str, arg_values: list[float],
                           detach_reset: bool, leak_grad: bool, pool: list[int]) -> tuple[Tensor, Tensor]:
    """BPTT of ``lif_multistep`` (``fused_kernels.lif_backward`` on the saved ``h``): ``(dL/dx, dL/dv0)``."""
    p = _rebuilt((decay, threshold, reset, surrogate, arg_names, arg_values, detach_reset, leak_grad))
    h = _dense_membrane(h)
    t, step = h.shape[0], h[0]
    pooled = _pool(pool)
    out_shape, out_strides = _out_step(step, pooled)
    gs = _grad_rows(g_s, t, math.prod(out_shape), out_strides, True, h.device)
    h2 = _rows(h, t)
    gh = h2 if g_h is None else _rows(_with_strides(g_h, h.stride()), t)  # h2 a placeholder when unused
    gv = torch.empty_like(step).copy_(g_v)  # dL/dv_T in, dL/dv_0 out
    gx = torch.empty_like(h)
    _backward_kernel(p, h2, gs, gh, g_h is not None, _rows(gv, 1)[0], _rows(gx, t), _pool_shape(step, pooled),
                     torch.empty((0, 0), dtype=h.dtype, device=h.device), _none_rows(h))
    return gx, gv


@lif_multistep_backward.register_fake
def _lif_multistep_backward_fake(h, g_s, g_v, g_h, *_):
    h = _dense_membrane(h)
    return torch.empty_like(h), torch.empty_like(h[0])


def _lif_setup(ctx, inputs, output) -> None:
    ctx.spec, ctx.pool, ctx.has_v0 = inputs[2:10], inputs[11], inputs[1] is not None
    ctx.save_for_backward(output[2])


def _lif_backward(ctx, g_s, g_v, g_h):
    (h,) = ctx.saved_tensors
    g_s = torch.zeros_like(h) if g_s is None else g_s  # (no pooling then: only s is used when pooling)
    g_v = torch.zeros_like(h[0]) if g_v is None else g_v
    g_x, g_v0 = torch.ops.deepspike.lif_multistep_backward(h, g_s, g_v, g_h, *ctx.spec, ctx.pool)
    return g_x, (g_v0 if ctx.has_v0 else None), *([None] * 10)


lif_multistep.register_autograd(_lif_backward, setup_context=_lif_setup)


def _learnable_step(x: Tensor) -> Tensor:
    return _dense_input(x)[1]


@torch.library.custom_op("deepspike::learnable_multistep", mutates_args=())
def learnable_multistep(x: Tensor, v0: Tensor | None, k: Tensor, th: Tensor, decay: float, threshold: float,
                        reset: str, surrogate: str, arg_names: str, arg_values: list[float], detach_reset: bool,
                        leak_grad: bool, decay_input: bool) -> tuple[Tensor, Tensor]:
    """``fused_learnable._forward`` (the learnable decay ``k`` and threshold ``th``): ``(s, v_T)``."""
    p = _rebuilt((decay, threshold, reset, surrogate, arg_names, arg_values, detach_reset, leak_grad))
    _, _, s, v = _learnable_forward(x, v0, k, th, p, decay_input)
    return s, v


@learnable_multistep.register_fake
def _learnable_multistep_fake(x, v0, k, th, *_):
    step = _learnable_step(x)
    s = _like_steps(x.shape, step.stride(), x.device, x.dtype)
    return s, torch.empty_strided(step.shape, step.stride(), dtype=x.dtype, device=x.device)


@torch.library.custom_op("deepspike::learnable_multistep_backward", mutates_args=())
def learnable_multistep_backward(x: Tensor, v0: Tensor | None, k: Tensor, th: Tensor, g_s: Tensor, g_v: Tensor,
                                 decay: float, threshold: float, reset: str, surrogate: str, arg_names: str,
                                 arg_values: list[float], detach_reset: bool, leak_grad: bool, decay_input: bool,
                                 want_threshold: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """BPTT of ``learnable_multistep`` (``learnable_backward``, ``h`` recomputed from ``x``): ``(dL/dx, dL/dv0,
    dL/dk, dL/dth)``, the last two in the shapes of ``k`` and ``th`` (``dL/dth`` zeros unless ``want_threshold``)."""
    p = _rebuilt((decay, threshold, reset, surrogate, arg_names, arg_values, detach_reset, leak_grad))
    x2, step = _dense_input(x)
    t, n = x.shape[0], step.numel()
    v_start = torch.zeros_like(step) if v0 is None else torch.empty_like(step).copy_(v0)
    gv = torch.empty_like(step).copy_(g_v)
    gx = torch.empty((t, n), dtype=x.dtype, device=x.device)
    g_k, g_th = _learnable_backward_kernel(x2, v_start, step_rows(g_s, step), gv, gx, k, th, step, p, decay_input,
                                           want_threshold)
    return gx.as_strided(x.shape, (n, *step.stride())), gv, g_k.contiguous(), g_th.contiguous()


@learnable_multistep_backward.register_fake
def _learnable_multistep_backward_fake(x, v0, k, th, *_):
    step = _learnable_step(x)
    g_x = _like_steps(x.shape, step.stride(), x.device, x.dtype)
    g_k = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    return g_x, torch.empty_like(step), g_k, torch.empty(th.shape, dtype=th.dtype, device=th.device)


def _learnable_setup(ctx, inputs, output) -> None:
    x, v0, k, th = inputs[:4]
    ctx.spec, ctx.decay_input, ctx.has_v0 = inputs[4:12], inputs[12], v0 is not None
    ctx.save_for_backward(x, v0, k, th)


def _learnable_backward(ctx, g_s, g_v):
    x, v0, k, th = ctx.saved_tensors
    g_s = torch.zeros_like(x) if g_s is None else g_s
    g_v = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device) if g_v is None else g_v
    want_th = ctx.needs_input_grad[3]
    g_x, g_v0, g_k, g_th = torch.ops.deepspike.learnable_multistep_backward(x, v0, k, th, g_s, g_v, *ctx.spec,
                                                                            ctx.decay_input, want_th)
    return g_x, (g_v0 if ctx.has_v0 else None), g_k, (g_th if want_th else None), *([None] * 9)


learnable_multistep.register_autograd(_learnable_backward, setup_context=_learnable_setup)
