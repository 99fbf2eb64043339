"""Fused multi-step IF/LIF update: one numba kernel call over all T steps, forward and backward.

``fused_multistep`` computes exactly what ``neurons.dynamics.neuron_multistep``'s reference loop
computes (same spikes bit for bit, membranes and gradients equal up to float32 summation order), for
every reset mode, ``detach_reset``, ``leak_grad`` and surrogate, but

* runs the time loop inside one compiled kernel instead of ~10 tensor ops per step in Python;
* saves only the pre-reset membrane ``h [T, B, ...]`` for the backward pass (spikes are re-derived as
  ``h - th >= 0``; the reference keeps ~5 tensors per step alive);
* saves nothing at all when no gradient is needed (inference), and nothing of size T for a time-invariant
  input (direct encoding): backward recomputes ``h`` from the ``[B, ...]`` input step;
* with ``pool=(kh, kw)`` also does the tiling average pooling that follows a conv layer's neurons, so the
  spike map and its gradient are never allocated (``layers.spiking_sequential`` uses it);
* with ``inplace=True`` (like ``nn.ReLU(inplace=True)``) writes ``h`` over the input currents ``x`` and,
  in backward, ``dL/dx`` over the saved ``h``: one ``[T, B, ...]`` buffer less at the forward peak and
  one less at the backward peak. ``x`` holds ``h`` afterwards (autograd's version counter catches any
  other user that saved ``x``); such a graph can be backpropagated once (``retain_graph`` re-use raises).
  A leaf ``x`` (the caller's own tensor requiring grad, a parameter) or a view of one is not written over while a
  gradient is recorded (``may_overwrite``: autograd forbids it, and it is the caller's data): the call runs out of
  place.
  Without a gradient (inference) ``inplace`` writes the spikes themselves over ``x`` (nothing else is kept):
  the neuron then adds no ``[T, B, ...]`` buffer at all.

``neuron_multistep`` dispatches here automatically when ``fused_supported`` says yes: float32 tensors,
on the CPU with numba importable (``fused_kernels``) or on CUDA with triton importable (``fused_triton``:
the same update without ``pool``), a surrogate the kernels know, and the switch not off. Switch it off
with the environment variable ``DEEPSPIKE_FUSED=0`` (read at each call; ``0``/``false``/``off``/``no`` switch
off, ``1``/``true``/``on``/``yes`` or unset leave on, anything else is a one-line ``ConfigError``) or
``neuron_multistep(..., fused=False)``. ``DEEPSPIKE_FUSED_BACKEND=triton`` runs the Triton kernels on CPU tensors
too (with ``TRITON_INTERPRET=1``: how they are tested without a GPU); ``auto`` (the default) and ``numba`` run
numba on CPU tensors and Triton on CUDA tensors; any other value is a one-line ``ConfigError``.
Double backward through the fused path raises an error (``once_differentiable``); use ``fused=False``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deepspike.coding.rate import direct, time_invariant
from deepspike.core.env import env_choice
from deepspike.core.first_order import first_order_backward
from deepspike.core.threads import run_numba_kernel
from deepspike.neurons.fused_constants import RESET_CODES, SURROGATE_CODES, surrogate_constants
from deepspike.neurons.params import NeuronParams

_KERNELS: list = []  # [module] once imported, [None] when numba is missing (imported lazily: numba is slow to load)

ENV_SWITCH = "DEEPSPIKE_FUSED"
ENV_BACKEND = "DEEPSPIKE_FUSED_BACKEND"
SWITCH_OFF, SWITCH_ON = ("0", "false", "off", "no"), ("1", "true", "on", "yes")
ON_CONDITION = f"{ENV_SWITCH} not {'/'.join(SWITCH_OFF)}"  # the condition, as refusals of a forced kernel state it
BACKENDS = ("auto", "numba", "triton")
FUSED_SURROGATES = tuple(SURROGATE_CODES)


def load_once(cache: list, load):
    """``load()`` (a kernel module's import) on the first call, kept in ``cache`` (``[module]``, or ``[None]`` when
    the import fails for want of numba, the optional "fast" extra); numba costs over a second to import."""
    if not cache:
        try:
            cache.append(load())
        except ImportError:  # pragma: no cover - exercised only without numba
            cache.append(None)
    return cache[0]


def _load_fused_kernels():
    from deepspike.neurons import fused_kernels

    return fused_kernels


def _kernels():
    """The ``fused_kernels`` module, or None without numba (the optional "fast" extra)."""
    return load_once(_KERNELS, _load_fused_kernels)


def switched_on() -> bool:
    """False when the environment variable ``DEEPSPIKE_FUSED`` is ``0``/``false``/``off``/``no`` (read at each call):
    every fused path then runs its reference loop; True when unset or ``1``/``true``/``on``/``yes``; a one-line
    ``ConfigError`` for anything else (a typo such as ``of`` left the kernels on)."""
    return env_choice(ENV_SWITCH, "1", SWITCH_ON + SWITCH_OFF) in SWITCH_ON


def fused_available() -> bool:
    """True when numba is importable and ``DEEPSPIKE_FUSED`` is not ``0``/``false``/``off``/``no``."""
    return switched_on() and _kernels() is not None


def _triton_kernels():
    """The ``fused_triton`` module when triton is importable, else None."""
    from deepspike.neurons import fused_triton

    return fused_triton if fused_triton.HAVE_TRITON else None


def uses_triton(x: torch.Tensor) -> bool:
    """Whether the fused update of ``x`` runs the Triton kernels: CUDA tensors, or any tensor when
    ``DEEPSPIKE_FUSED_BACKEND=triton`` (module docstring; ``auto``, the default, or ``numba`` otherwise, anything
    else a one-line ``ConfigError``: ``tritonn`` ran numba with nothing said)."""
    return env_choice(ENV_BACKEND, "auto", BACKENDS) == "triton" or x.device.type == "cuda"


def kernel_ready(x: torch.Tensor) -> bool:
    """Whether a numba time-loop kernel may run on ``x``: numba and the switch on (``fused_available``) and
    ``x`` a CPU float32 tensor with at least one element (used here and by ``layers.spikebp_lif``)."""
    return fused_available() and x.device.type == "cpu" and x.dtype == torch.float32 and x.numel() > 0


def fused_supported(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None = None) -> bool:
    """Whether ``fused_multistep`` can run ``x [T, B, ...]`` with ``params`` (and ``v0 [B, ...]``).

    Needs: ``kernel_ready(x)`` (CPU), or for the Triton kernels (``uses_triton``) the switch on, triton
    importable and ``x`` float32 and not empty; ``v0`` (if given) float32 on ``x``'s device; a surrogate the
    kernels implement; float membranes (``params.state_quant`` None).
    """
    if uses_triton(x):
        ready = switched_on() and _triton_kernels() is not None and x.dtype == torch.float32 and x.numel() > 0
    else:
        ready = kernel_ready(x)
    if not ready:
        return False
    if v0 is not None and (v0.device != x.device or v0.dtype != torch.float32):
        return False
    return params.spike_fn.name in FUSED_SURROGATES and params.state_quant is None


def _run(name: str, *args) -> None:
    """Run kernel ``name`` (``lif_forward``/``lif_backward``) on its arguments: the Triton version on torch
    tensors when the first tensor ``uses_triton``, else the numba version on the tensors' numpy views."""
    first = next(a for a in args if isinstance(a, torch.Tensor))
    if uses_triton(first):
        getattr(_triton_kernels(), name)(*args)
    else:
        run_numba_kernel(getattr(_kernels(), name), *(a.numpy() if isinstance(a, torch.Tensor) else a for a in args))


def _dense_step(y: torch.Tensor) -> bool:
    """True when ``y [B, ...]`` fills its memory densely in a layout the kernels can treat as flat memory:
    contiguous, or channels-last (4-D) / channels-last-3d (5-D)."""
    if y.is_contiguous():
        return True
    if y.dim() == 4:
        return y.is_contiguous(memory_format=torch.channels_last)
    return y.dim() == 5 and y.is_contiguous(memory_format=torch.channels_last_3d)


def _dense_steps(x: torch.Tensor) -> bool:
    """True when ``x [T, B, ...]`` is T dense steps (``_dense_step``) stored one after the other."""
    return (x.shape[0] == 1 or x.stride(0) == x[0].numel()) and _dense_step(x[0])


def _rows(y: torch.Tensor, t: int) -> torch.Tensor:
    """``[T, N]`` view of the memory of ``y`` (``_dense_steps``, or one dense step with ``t = 1``): the
    kernels are elementwise in N, so any dense per-step layout (NCHW, channels-last) works unchanged."""
    n = y.numel() // t
    return y.as_strided((t, n), (n, 1))


def _like_steps(shape: torch.Size, step_strides: tuple[int, ...], device: torch.device,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uninitialised ``[T, B, ...]`` tensor (float32 unless ``dtype``) whose steps have the layout ``step_strides``."""
    return torch.empty_strided(shape, (math.prod(shape[1:]), *step_strides), dtype=dtype, device=device)


def _with_strides(g: torch.Tensor, strides: tuple[int, ...]) -> torch.Tensor:
    """``g`` with the given memory layout (a copy only when its strides differ)."""
    if g.stride() == tuple(strides):
        return g
    return torch.empty_strided(g.shape, strides, dtype=g.dtype, device=g.device).copy_(g)  # on g's device (CUDA)


def _grad_rows(g: torch.Tensor | None, t: int, n: int, strides: tuple[int, ...], one_row: bool,
               device: torch.device) -> torch.Tensor:
    """``dL/ds [T, B, ...]`` as the backward kernel's ``[T, N]`` rows in the layout ``strides`` of one output step
    (zeros for None), or, with ``one_row`` and a ``g`` that is the same at every step (stride 0 in T: the
    gradient of ``s.sum()``), its one step as ``[1, N]``: no ``[T, N]`` copy of it."""
    if g is None:
        return torch.zeros(t, n, dtype=torch.float32, device=device)
    if one_row and t > 1 and g.stride(0) == 0:
        return _rows(_with_strides(g[0], strides), 1)
    return _rows(_with_strides(g, (n, *strides)), t)


def _relayout(step: torch.Tensor, pool: tuple[int, int, bool]) -> bool:
    """Whether the pooled output is written channels-last although ``step`` is contiguous (``pool[2]``)."""
    return pool[2] and step.is_contiguous() and step.shape[1] > 1


def _pool_shape(step: torch.Tensor, pool: tuple[int, int, bool] | None) -> np.ndarray:
    """The kernels' ``pool`` argument ``(kh, kw, W, E, Ho, C)`` (int64) for a dense ``[B, C, H, W]`` step: its
    memory as ``[M, H, W, E]`` images of E-vectors (E = 1 contiguous, E = C channels-last), and C > 0 when the
    pooled output of a contiguous step is written channels-last; zeros without pooling."""
    if pool is None:
        return np.zeros(6, dtype=np.int64)
    _, c, h, w = step.shape
    e = 1 if step.is_contiguous() else c
    return np.array([pool[0], pool[1], w, e, h // pool[0], c if _relayout(step, pool) else 0], dtype=np.int64)


def _out_step(step: torch.Tensor, pool: tuple[int, int, bool] | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(shape, strides)`` of one step of the neuron's output: those of ``step``, or with ``pool = (kh, kw,
    channels_last)`` of ``[B, C, H/kh, W/kw]`` in ``step``'s memory format (contiguous or channels-last), or
    channels-last when asked for."""
    if pool is None:
        return tuple(step.shape), step.stride()
    b, c, h, w = step.shape
    ho, wo = h // pool[0], w // pool[1]
    contiguous = step.is_contiguous() and not _relayout(step, pool)
    strides = (c * ho * wo, ho * wo, wo, 1) if contiguous else (ho * wo * c, 1, wo * c, c)
    return (b, c, ho, wo), strides


def poolable(x: torch.Tensor, kernel: tuple[int, int]) -> bool:
    """Whether ``fused_multistep(..., pool=kernel)`` can run on ``x [T, B, C, H, W]``: a 5-D input whose H and W
    are multiples of the kernel (tiling windows), for the numba kernels (the Triton kernels do not pool)."""
    return not uses_triton(x) and x.dim() == 5 and x.shape[3] % kernel[0] == 0 and x.shape[4] % kernel[1] == 0


def _dense_input(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, step)``: the kernels' ``[T, N]`` (or time-invariant ``[1, N]``) view of ``x [T, B, ...]`` and
    one dense ``[B, ...]`` step with the layout every per-step tensor of the call gets (a copy only when
    ``x`` is not dense steps)."""
    if time_invariant(x):  # the same currents at every step (an expanded view): pass one row
        step = x[0].detach()
        step = step if _dense_step(step) else step.contiguous()
        return _rows(step, 1), step  # [B, ...] -> [1, N]
    xd = x.detach()
    xd = xd if _dense_steps(xd) else xd.contiguous()
    return _rows(xd, x.shape[0]), xd[0]  # [T, B, ...] -> [T, N]


def _forward(
    x: torch.Tensor,
    v0: torch.Tensor | None,
    params: NeuronParams,
    store_h: bool,
    h_over_x: bool = False,
    pool: tuple[int, int, bool] | None = None,
    s_over_x: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run the forward kernel; returns ``(s [T, B, ...], v_T [B, ...], h [T, B, ...] or None)``.

    The outputs keep the per-step memory layout of ``x`` when it is dense (contiguous or channels-last:
    ``_dense_steps``), so channels-last convolutions feed the neurons and read their spikes without copies;
    other inputs are made contiguous. ``h_over_x``: write ``h`` into ``x``'s own memory; the kernel reads
    ``x[t, n]`` before it writes ``h[t, n]``, so aliasing is exact (ignored for a time-invariant ``x``, which
    is passed as one row and never copied T times); ``s_over_x``: the same for the spikes (without ``pool`` and
    ``store_h``). ``pool = (kh, kw, channels_last)``: ``s`` is the tiling
    average pooling of the spikes, ``[T, B, C, H/kh, W/kw]`` (``poolable``), channels-last when asked for; the
    spikes themselves are never stored.
    """
    t = x.shape[0]
    x2, step = _dense_input(x)
    h_over_x = h_over_x and _dense_steps(x) and not time_invariant(x)
    s_over_x = s_over_x and pool is None and not store_h and _dense_steps(x) and not time_invariant(x)
    layout = step.stride()
    v = torch.empty_strided(x.shape[1:], layout, dtype=x.dtype, device=x.device)  # [B, ...], one step's layout
    v.zero_() if v0 is None else v.copy_(v0.detach())
    out_shape, out_strides = _out_step(step, pool)
    s = x.detach() if s_over_x else _like_steps((t, *out_shape), out_strides, x.device)
    h = (x.detach() if h_over_x else _like_steps(x.shape, layout, x.device)) if store_h else None
    _run(
        "lif_forward",
        x2,
        _rows(v, 1)[0],
        _rows(s, t),
        _rows(h, t) if store_h else torch.empty((0, 0), dtype=torch.float32, device=x.device),
        np.float32(params.decay),
        np.float32(params.threshold),
        RESET_CODES[params.reset],
        store_h,
        _pool_shape(step, pool),
    )
    return s, v, h


def _repeated_step(x: torch.Tensor) -> torch.Tensor | None:
    """The ``[B, ...]`` tensor that a time-invariant ``x [T, B, ...]`` repeats as a stride-0 view of it
    (``coding.rate.direct``), or None (not time-invariant, or a view of something else)."""
    base = x._base
    if not time_invariant(x) or base is None:
        return None
    same = base.shape == x.shape[1:] and base.stride() == x.stride()[1:] and base.storage_offset() == x.storage_offset()
    return base if same else None


def _backward_kernel(p: NeuronParams, h2, gs, gh, has_gh: bool, gv, gx, pool_shape, x2, v_rows) -> None:
    """``lif_backward`` (``fused_kernels``) with the surrogate, leak and reset of ``p``: ``h2`` the saved membrane
    ``[T, N]`` (or ``[0, N]``: recomputed from the inputs ``x2`` and ``v_rows``), ``gs``/``gh`` the incoming
    gradients, ``gv`` ``dL/dv_T`` in and ``dL/dv_0`` out, ``gx`` ``dL/dx`` out (rows, in place)."""
    code, p1, p2 = surrogate_constants(p.spike_fn.name, p.spike_fn.params)
    kb = p.decay if p.leak_grad else 1.0
    _run("lif_backward", h2, gs, gh, has_gh, gv, gx, np.float32(kb), np.float32(p.threshold), RESET_CODES[p.reset],
         p.detach_reset, code, p1, p2, pool_shape, x2, v_rows, np.float32(p.decay))


def recomputed_input_grad(x: torch.Tensor, g_s: torch.Tensor, params: NeuronParams,
                          pool: tuple[int, int] | None = None, pool_channels_last: bool = False) -> torch.Tensor:
    """``dL/dx [T, B, ...]`` of ``s = fused_multistep(x, params, pool=pool, pool_channels_last=...)`` (from
    ``v0 = 0``) for ``g_s = dL/ds``, written over ``x``'s own memory (``x`` is consumed) and returned.

    Nothing of the forward pass is needed: the numba backward kernel recomputes the membrane ``h`` block by block
    from ``x`` (the forward update, so bit for bit the forward's ``h`` and spikes) into a scratch that stays in
    cache, then runs BPTT on it; it reads a block of ``x`` before it writes that block of ``dL/dx``, so the
    aliasing is exact. ``x``: dense steps (``_dense_steps``), CPU float32 (``kernel_ready``), not time-invariant.
    Used by ``layers.batchnorm_neuron``, which saves the batch-norm's input instead of the membrane.
    """
    t = x.shape[0]
    step = x[0]
    n = step.numel()
    pool = None if pool is None else (int(pool[0]), int(pool[1]), bool(pool_channels_last))
    out_shape, out_strides = _out_step(step, pool)
    gs = _grad_rows(g_s, t, math.prod(out_shape), out_strides, False, x.device)
    x2 = _rows(x, t)
    gv, v_start = (torch.zeros(n, dtype=torch.float32, device=x.device) for _ in range(2))
    no_h = torch.empty((0, n), dtype=torch.float32, device=x.device)
    _backward_kernel(params, no_h, gs, x2, False, gv, x2, _pool_shape(step, pool), x2, v_start)
    return x


def needs_autograd(x: torch.Tensor, v0: torch.Tensor | None) -> bool:
    """Whether a neuron call on ``x`` (and ``v0``) must record a graph: grad mode on and an input requiring grad."""
    return torch.is_grad_enabled() and (x.requires_grad or (v0 is not None and v0.requires_grad))


def may_overwrite(x: torch.Tensor) -> bool:
    """Whether an ``inplace`` neuron that records a gradient may write over ``x``: not a leaf (the user's own
    tensor, an ``nn.Parameter``) nor a view of one, which autograd forbids in-place ops on (``nn.ReLU(inplace=True)``
    raises there); such an ``x`` is left as it is and the neuron runs out of place."""
    return not x.is_leaf and (x._base is None or not x._base.is_leaf)


def refuse_second_backward(ctx) -> None:
    """Raise when the backward of an inplace neuron, whose first backward wrote over its saved tensor, runs again."""
    if ctx.consumed:
        raise RuntimeError("an inplace spiking neuron's graph can be backpropagated only once; "
                           "build the neuron with inplace=False to use retain_graph")


class _FusedMultistep(torch.autograd.Function):
    """``(x [T, B, ...], v0 [B, ...] or None) -> (s, v_T, h or None)``; backward = ``fused_kernels.lif_backward``.

    ``inplace`` (module docstring): ``h`` lives in ``x``'s memory and backward writes ``dL/dx`` over it
    unless the caller keeps ``h`` (``keep_h``). ``steps``: ``x`` is one ``[B, ...]`` step that the neuron
    receives at each of ``steps`` steps (the base of a time-invariant input); its gradient is summed over the
    steps inside the backward kernel, and unless the caller keeps ``h`` nothing of size T is saved: backward
    recomputes ``h`` block by block from ``x`` and ``v0`` (one more pass of the cheap forward update, in cache,
    instead of a ``[T, B, ...]`` buffer alive from forward to backward). ``pool = (kh, kw, channels_last)``:
    ``s`` is the tiling average pooling of the spikes (``_forward``) and its gradient is spread back in the
    kernel.
    """

    @staticmethod
    def forward(ctx, x, v0, params, inplace, keep_h, steps=None, pool=None):
        ctx.recompute = steps is not None and not keep_h
        if steps is not None:
            x = x.detach() if _dense_step(x) else x.detach().contiguous()  # the step every call reads
            step = x
            x = direct(x, steps)  # [B, ...] -> [T, B, ...], a stride-0 view
        inplace = inplace and _dense_steps(x)  # a stride-0 (time-invariant) x is never dense steps
        s, v, h = _forward(x, v0, params, store_h=not ctx.recompute, h_over_x=inplace, pool=pool)
        if inplace:
            # x's memory now holds h. Not mark_dirty (it forbids views of x, such as TimeDistributed's
            # outputs, in a multi-output Function): bump x's version instead, so any other node that saved
            # x for its backward fails loudly there rather than reading h.
            torch.autograd.graph.increment_version(x)
        if ctx.recompute:
            ctx.save_for_backward(step, v0)
        else:
            ctx.save_for_backward(h)
        ctx.steps, ctx.pool, ctx.params = x.shape[0], pool, params
        ctx.summed = steps is not None
        ctx.has_v0 = v0 is not None
        ctx.grad_over_h = inplace and not keep_h
        ctx.consumed = False
        ctx.set_materialize_grads(False)
        return s, v, h

    @staticmethod
    @first_order_backward("the fused IF/LIF kernel (neurons.fused); "
                          "set DEEPSPIKE_FUSED=0 for the neuron's autograd loop")
    def backward(ctx, g_s, g_v, g_h):
        refuse_second_backward(ctx)
        p: NeuronParams = ctx.params
        t = ctx.steps
        if ctx.recompute:
            step, v0 = ctx.saved_tensors  # [B, ...] dense; h is recomputed in the kernel
            h = None
            x2 = _rows(step, 1)  # [1, N]
            v_start = torch.zeros_like(step) if v0 is None else torch.empty_like(step).copy_(v0)
            v_rows = _rows(v_start, 1)[0]  # [N]
        else:
            (h,) = ctx.saved_tensors
            step = h[0]
            x2 = torch.empty((0, 0), dtype=torch.float32, device=step.device)  # unused
            v_rows = torch.empty(0, dtype=torch.float32, device=step.device)  # unused
        n, dev = step.numel(), step.device
        # [T, B, ...] -> [T, N] in the forward's memory order; gradients are brought to that layout
        h2 = torch.empty((0, n), dtype=torch.float32, device=dev) if h is None else _rows(h, t)
        out_shape, out_strides = _out_step(step, ctx.pool)
        out_numel = math.prod(out_shape)
        one_row = h is not None  # the kernels read a one-row gs at every step
        gs = _grad_rows(g_s, t, out_numel, out_strides, one_row, dev)
        gh = h2 if g_h is None else _rows(_with_strides(g_h, h.stride()), t)  # h2 is a placeholder when unused
        gv = torch.zeros_like(step) if g_v is None else torch.empty_like(step).copy_(g_v)  # [B, ...], step layout
        # The kernel reads h[t, n] before writing gx[t, n], so dL/dx may overwrite h exactly.
        if ctx.summed:
            gx = torch.zeros_like(step).unsqueeze(0)  # [1, B, ...]: the kernel sums dL/dx_t over t into it
        else:
            gx = h if ctx.grad_over_h and g_h is None else torch.empty_like(h)
        ctx.consumed = gx is h
        _backward_kernel(p, h2, gs, gh, g_h is not None, _rows(gv, 1)[0], _rows(gx, gx.shape[0]),
                         _pool_shape(step, ctx.pool), x2, v_rows)
        g_v0 = gv if ctx.has_v0 and ctx.needs_input_grad[1] else None
        return (gx[0] if ctx.summed else gx), g_v0, None, None, None, None, None


def op_params(params: NeuronParams) -> tuple:
    """The eight fields of ``params`` as the custom ops' arguments (``fused_ops``): ``(decay, threshold, reset,
    surrogate, its argument names joined by commas, their float values, detach_reset, leak_grad)``."""
    args = params.surrogate_args
    return (params.decay, params.threshold, params.reset, params.surrogate, ",".join(args.keys()),
            [float(a) for a in args.values()], params.detach_reset, params.leak_grad)


def _compiled_multistep(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None, return_membrane: bool,
                        pool: tuple[int, int, bool] | None):
    """``fused_multistep`` while ``torch.compile`` traces: the custom op ``deepspike::lif_multistep``
    (``fused_ops``; out of place, ``h [T, B, ...]`` saved when a gradient is recorded)."""
    store_h = return_membrane or needs_autograd(x, v0)
    s, v, h = torch.ops.deepspike.lif_multistep(x, v0, *op_params(params), store_h, [] if pool is None else list(pool))
    return (s, v, h) if return_membrane else (s, v)


def fused_multistep(
    x: torch.Tensor,
    params: NeuronParams,
    v0: torch.Tensor | None = None,
    return_membrane: bool = False,
    inplace: bool = False,
    pool: tuple[int, int] | None = None,
    pool_channels_last: bool = False,
):
    """The fused equivalent of ``neuron_multistep`` (same arguments, same returns; module docstring).

    x: ``[T, B, ...]`` float32 (``fused_supported``); v0: ``[B, ...]`` or None (zeros).
    Returns ``(s [T, B, ...], v_T [B, ...])``, plus the pre-reset membrane ``h [T, B, ...]`` with
    ``return_membrane=True``. Without autograd (no grad mode, or no input requiring grad) nothing is saved.
    ``inplace``: reuse ``x``'s memory for ``h`` and, in backward, for ``dL/dx``, or without autograd for the
    spikes ``s`` (module docstring); the values and gradients are the same either way. ``pool = (kh, kw)``
    (``x [T, B, C, H, W]``, ``poolable``): ``s`` is ``avg_pool2d(spikes, (kh, kw))`` per step,
    ``[T, B, C, H/kh, W/kw]``, computed in the kernel without ever storing the spikes (equal to pooling ``s``
    afterwards; the spike map and its gradient, the largest tensors of a conv layer, never exist).
    ``pool_channels_last``: write the pooled steps in channels-last layout even when ``x`` is contiguous (for a
    convolution next: oneDNN's channels-last convolutions are faster on CPU), at no extra pass over memory.
    """
    pool = None if pool is None else (int(pool[0]), int(pool[1]), bool(pool_channels_last))
    if torch.compiler.is_compiling():  # Dynamo cannot trace the numba kernels: the custom op (``fused_ops``)
        return _compiled_multistep(x, params, v0, return_membrane, pool)
    if needs_autograd(x, v0):
        inplace = inplace and may_overwrite(x)  # a leaf requiring grad (or a view of one) is never written over
        base = _repeated_step(x)
        if base is not None:  # the gradient reaches the [B, ...] step directly, summed over T in the kernel
            s, v, h = _FusedMultistep.apply(base, v0, params, inplace, return_membrane, x.shape[0], pool)
        else:
            s, v, h = _FusedMultistep.apply(x, v0, params, inplace, return_membrane, None, pool)
    else:
        s, v, h = _forward(x, v0, params, store_h=return_membrane, pool=pool, s_over_x=inplace)
    return (s, v, h) if return_membrane else (s, v)
