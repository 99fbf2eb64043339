"""Fused multi-step LIF update with tensor (learnable) decay and threshold: one kernel call over all T steps,
forward and backward, with the gradients of the decay and the threshold accumulated inside the backward kernel.

``learnable_multistep`` computes what ``learnable_dynamics.learnable_multistep_reference`` computes (same spikes
bit for bit, gradients equal up to float summation order) for decay and threshold tensors of shape ``()`` (per
layer) or ``[C, 1, ..., 1]`` (per channel of one step ``[B, C, ...]``). Per-channel values are expanded to one
step ``[N]`` in the step's memory layout (the size of one time step, T times smaller than the input), so any dense
layout (contiguous, channels-last) works unchanged; a per-layer value goes to the numba kernels as its one value
(each block writes its own rows in cache; Triton gets the ``[N]`` expansion). The gradients the kernel returns (per
neuron, or per-block partial sums for a per-layer value) are summed back to the parameter's shape here, and the
threshold's is not computed when the threshold needs no gradient (PLIF).

Kernels: numba (``fused_learnable_kernels``) on CPU float32/float64 tensors, Triton
(``fused_learnable_triton``) on CUDA float32 tensors or wherever ``fused.uses_triton`` says so (the same switch
``DEEPSPIKE_FUSED`` and backend variable as the fixed-parameter kernels). Saved for backward: the input ``x``
(``[T, B, ...]``, or one step for a time-invariant input), from which the backward kernel recomputes ``h``, the
decay and threshold as given (``()`` or ``[C, 1, ...]``: any one-step expansion is written again in backward) and
the initial membrane only when one was given (zeros otherwise).
"""

from __future__ import annotations

import torch

from deepspike.core.first_order import first_order_backward
from deepspike.core.threads import run_numba_kernel
from deepspike.neurons.fused import _dense_input, _rows, load_once, op_params, switched_on, uses_triton
from deepspike.neurons.fused_constants import RESET_CODES, SURROGATE_CODES, surrogate_constants
from deepspike.neurons.params import NeuronParams

_NUMBA: list = []  # [module] once imported, [None] without numba (loaded lazily: numba is slow to import)


def _load_numba_kernels():
    from deepspike.neurons import fused_learnable_kernels

    return fused_learnable_kernels


def _numba_kernels():
    return load_once(_NUMBA, _load_numba_kernels)


def _triton_kernels():
    from deepspike.neurons import fused_learnable_triton

    return fused_learnable_triton if fused_learnable_triton.HAVE_TRITON else None


def learnable_fused_supported(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None = None) -> bool:
    """Whether the fused kernels can run ``x [T, B, ...]``: the switch on, a non-empty input, a surrogate the
    kernels know, ``v0`` (if given) of ``x``'s dtype and device, and numba with a CPU float32/float64 ``x`` or
    triton with a float32 ``x`` (``fused.uses_triton``)."""
    if not switched_on() or x.numel() == 0 or params.spike_fn.name not in SURROGATE_CODES:
        return False
    if v0 is not None and (v0.device != x.device or v0.dtype != x.dtype):
        return False
    if uses_triton(x):
        return x.dtype == torch.float32 and _triton_kernels() is not None
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and _numba_kernels() is not None


def _run(name: str, *args) -> None:
    """Kernel ``name`` on torch tensors (Triton) or on their numpy views (numba), as ``fused._run``."""
    first = next(a for a in args if isinstance(a, torch.Tensor))
    if uses_triton(first):
        getattr(_triton_kernels(), name)(*args)
    else:
        run_numba_kernel(getattr(_numba_kernels(), name), *(a.numpy() if isinstance(a, torch.Tensor) else a
                                                             for a in args))


def _per_neuron(p: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """``p`` (broadcasting against ``step [B, ...]``) written out as one step in ``step``'s layout -> ``[N]``."""
    out = torch.empty_strided(step.shape, step.stride(), dtype=step.dtype, device=step.device)
    out.copy_(p.detach().to(step.dtype).expand(step.shape))
    return _rows(out, 1)[0]


def param_rows(p: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """The kernels' form of parameter ``p``: its one value ``[1]`` for a per-layer ``p`` on the numba kernels (each
    block writes its own rows, ``fused_learnable_kernels``), else ``_per_neuron`` ``[N]``."""
    if p.dim() == 0 and not uses_triton(step):
        return p.detach().to(step.dtype).reshape(1)
    return _per_neuron(p, step)


def param_grad_rows(p: torch.Tensor, step: torch.Tensor, wanted: bool) -> torch.Tensor:
    """Zeros for the kernels' gradient of parameter ``p``: per-block partial sums for a per-layer ``p`` on numba,
    nothing (``[0]``) when numba need not compute it, else one per neuron ``[N]``."""
    n = step.numel()
    if not uses_triton(step):
        if not wanted:
            return step.new_zeros(0)
        if p.dim() == 0:
            return step.new_zeros(_numba_kernels().n_blocks(n))
    return step.new_zeros(n)


def step_rows(g: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """``[T, N]`` rows of ``g [T, B, ...]`` in ``step``'s memory layout (a copy only when ``g``'s differs)."""
    strides = (step.numel(), *step.stride())
    if g.stride() != strides:
        g = torch.empty_strided(g.shape, strides, dtype=step.dtype, device=step.device).copy_(g)
    return _rows(g, g.shape[0])


def summed_to_param(g_rows: torch.Tensor, step: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The kernel's gradient of ``p`` (``param_grad_rows``: per neuron ``[N]`` in ``step``'s layout, or per-block sums)
    summed to the shape of parameter ``p``."""
    if p.dim() == 0:
        return g_rows.sum().to(p.dtype)
    g = g_rows.as_strided(step.shape, step.stride())  # [N] -> [B, ...] in the step's layout
    return g.sum_to_size(p.shape).to(p.dtype)


def param_grad_buffers(k: torch.Tensor, th: torch.Tensor, step: torch.Tensor,
                       want_threshold: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernels' zeroed ``dL/dk`` and ``dL/dth`` buffers (``param_grad_rows``; the threshold's only when wanted)."""
    return param_grad_rows(k, step, True), param_grad_rows(th, step, want_threshold)


def param_grads(gk: torch.Tensor, gth: torch.Tensor, step: torch.Tensor, k: torch.Tensor,
                th: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/dk, dL/dth)`` in the shapes of ``k`` and ``th`` from the kernels' buffers (``param_grad_buffers``);
    zeros for a threshold whose gradient was not computed."""
    g_th = summed_to_param(gth, step, th) if gth.numel() else torch.zeros_like(th)
    return summed_to_param(gk, step, k), g_th


def _backward_kernel(x2, v_start, gs, gv, gx, k, th, step, p: NeuronParams, decay_input: bool,
                     want_threshold: bool = True):
    """``learnable_backward`` on rows (``x2``/``gs``/``gx`` ``[T, N]``, ``v_start``/``gv`` one step ``step``) for
    the parameters ``k``, ``th`` as given (``()`` or ``[C, 1, ...]``); ``gx`` and ``gv`` are written in place;
    returns ``(dL/dk, dL/dth)`` in the shapes of ``k`` and ``th`` (``dL/dth`` zeros unless ``want_threshold``)."""
    gk, gth = param_grad_buffers(k, th, step, want_threshold)
    code, p1, p2 = surrogate_constants(p.spike_fn.name, p.spike_fn.params)
    _run("learnable_backward", x2, _rows(v_start, 1)[0], gs, _rows(gv, 1)[0], gx, gk, gth, param_rows(k, step),
         param_rows(th, step), RESET_CODES[p.reset], p.detach_reset, decay_input, code, p1, p2)
    return param_grads(gk, gth, step, k, th)


def recomputed_learnable_grads(x: torch.Tensor, g_s: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor,
                               params: NeuronParams, decay_input: bool):
    """``(dL/dx, dL/ddecay, dL/dthreshold)`` of ``s = fused_learnable_multistep(x, None, decay, threshold, ...)`` (from
    ``v0 = 0``) for ``g_s = dL/ds``, with ``dL/dx`` written over ``x``'s own memory (``x`` is consumed).

    As the autograd node's own backward: the numba kernel recomputes ``h`` from ``x`` block by block, and it reads
    a block's ``x`` before writing that block's ``dL/dx`` (``fused_learnable_kernels``), so the aliasing is exact.
    ``x [T, B, ...]``: dense steps on the CPU (``learnable_fused_supported``, numba), not time-invariant. Used by
    ``layers.batchnorm_neuron``. ``dL/ddecay`` and ``dL/dthreshold`` have the shapes of ``decay`` and ``threshold``.
    """
    x2, step = _dense_input(x)
    gs = step_rows(g_s, step)
    gv = torch.zeros_like(step)
    g_k, g_th = _backward_kernel(x2, torch.zeros_like(step), gs, gv, x2, decay, threshold, step, params, decay_input,
                                 threshold.requires_grad)
    return x2.as_strided(x.shape, (step.numel(), *step.stride())), g_k, g_th


def _forward(x: torch.Tensor, v0: torch.Tensor | None, k: torch.Tensor, th: torch.Tensor, params: NeuronParams,
             decay_input: bool, s_over_x: bool = False):
    """``(x2, step, s, v)``: ``learnable_forward`` on the rows ``x2 [T or 1, N]`` of ``x [T, B, ...]`` in the
    per-step layout ``step``; spikes ``s [T, B, ...]`` (written over ``x2``'s memory with ``s_over_x`` unless the
    input is time-invariant) and ``v_T`` (``v0`` or zeros in)."""
    t = x.shape[0]
    x2, step = _dense_input(x)  # [T or 1, N] and the per-step layout
    v = torch.empty_strided(step.shape, step.stride(), dtype=x.dtype, device=x.device)
    v.zero_() if v0 is None else v.copy_(v0.detach())
    strides = (step.numel(), *step.stride())
    if s_over_x and x2.shape[0] == t:
        s = x2.as_strided(x.shape, strides)
    else:
        s = torch.empty_strided(x.shape, strides, dtype=x.dtype, device=x.device)
    _run("learnable_forward", x2, _rows(v, 1)[0], _rows(s, t), param_rows(k, step), param_rows(th, step),
         RESET_CODES[params.reset], decay_input)
    return x2, step, s, v


def learnable_spikes_over_input(x: torch.Tensor, decay: torch.Tensor, threshold: torch.Tensor, params: NeuronParams,
                                decay_input: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, v_T)`` of the update from rest without autograd, the spikes written over ``x``'s own memory (``x`` is
    consumed; ``learnable_fused_supported``). For callers that keep what backward needs themselves
    (``layers.batchnorm_neuron`` saves the batch-norm's input and recomputes ``x``)."""
    _, _, s, v = _forward(x, None, decay, threshold, params, decay_input, s_over_x=True)
    return s, v


class _FusedLearnable(torch.autograd.Function):
    """``(x [T, B, ...], v0 [B, ...] or None, k, th) -> (s [T, B, ...], v_T [B, ...])``; backward =
    ``learnable_backward`` (module docstring), returning ``dL/dx``, ``dL/dv0``, ``dL/dk``, ``dL/dth``."""

    @staticmethod
    def forward(ctx, x, v0, k, th, params, decay_input):
        x2, step, s, v = _forward(x, v0, k, th, params, decay_input)
        v_start = None if v0 is None else torch.empty_strided(  # None: zeros, made again in backward
            step.shape, step.stride(), dtype=x.dtype, device=x.device).copy_(v0.detach())
        # saved: the input and the parameters as given (k, th: () or [C, 1, ...]); their [N] expansions are
        # written again in backward (each one step in size: (T + 3) N floats saved otherwise, not T N)
        ctx.save_for_backward(x2, v_start, k, th)
        ctx.params, ctx.decay_input, ctx.steps, ctx.step_shape = params, decay_input, x.shape[0], step
        ctx.has_v0 = v0 is not None
        ctx.set_materialize_grads(False)
        return s, v

    @staticmethod
    @first_order_backward("the fused learnable-LIF kernel (neurons.fused_learnable); "
                          "set DEEPSPIKE_FUSED=0 for the neuron's autograd loop")
    def backward(ctx, g_s, g_v):
        x2, v_start, k, th = ctx.saved_tensors
        p: NeuronParams = ctx.params
        step, t = ctx.step_shape, ctx.steps
        if v_start is None:
            v_start = torch.zeros_like(step)
        gs = torch.zeros((t, step.numel()), dtype=x2.dtype, device=x2.device) if g_s is None else step_rows(g_s, step)
        gv = torch.zeros_like(v_start) if g_v is None else torch.empty_like(v_start).copy_(g_v)
        gx = torch.empty((t, step.numel()), dtype=x2.dtype, device=x2.device)
        g_k, g_th = _backward_kernel(x2, v_start, gs, gv, gx, k, th, step, p, ctx.decay_input, ctx.needs_input_grad[3])
        g_x = gx.as_strided((t, *step.shape), (step.numel(), *step.stride()))
        g_v0 = gv if ctx.has_v0 and ctx.needs_input_grad[1] else None
        g_k = g_k if ctx.needs_input_grad[2] else None
        g_th = g_th if ctx.needs_input_grad[3] else None
        return g_x, g_v0, g_k, g_th, None, None


def fused_learnable_multistep(
    x: torch.Tensor, v0: torch.Tensor | None, decay: torch.Tensor, threshold: torch.Tensor, params: NeuronParams,
    decay_input: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused update (module docstring): ``x [T, B, ...]``, ``v0 [B, ...]`` or None -> ``(s [T, B, ...], v_T)``;
    gradients reach ``x``, ``v0``, ``decay`` and ``threshold`` (``learnable_fused_supported`` must hold)."""
    if torch.compiler.is_compiling():  # Dynamo cannot trace the numba kernels: the custom op (``fused_ops``)
        return torch.ops.deepspike.learnable_multistep(x, v0, decay, threshold, *op_params(params), decay_input)
    return _FusedLearnable.apply(x, v0, decay, threshold, params, decay_input)
