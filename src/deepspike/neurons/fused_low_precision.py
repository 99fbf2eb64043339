"""Fused IF/LIF update on bfloat16 / float16 inputs: the state in float32, the tensors in the input's dtype.

A reduced-precision net (``model.to(torch.bfloat16)``, or ``--dtype bfloat16`` in the Open Neuromorphic
benchmark) hands its neurons ``x [T, B, ...]`` in bfloat16. Rounding the membrane to bfloat16 at every step
(what a dtype-preserving step loop does) loses the small currents a leaky neuron integrates over many steps,
and converting the whole input to float32 first doubles the neuron's memory. On the CPU the float32 kernels of
``neurons.fused`` run on column chunks of the ``[T, N]`` rows (the update is elementwise in N, so any split of N
is exact): each chunk of ``x`` is converted into a float32 buffer of at most ``CHUNK_ELEMENTS`` elements that
stays in cache, the kernel runs on it, and the spikes are written back in ``x``'s dtype (0 and 1 are exact in
every float format). The Triton kernels (CUDA, ``neurons.fused_triton``) load ``x`` in its dtype, keep the state in
float32 registers and store the spikes in ``x``'s dtype themselves, with no chunks. Per neuron and step::

    h_t = k v_{t-1} + float32(x_t),  s_t = H(h_t - th),  v_t = reset(h_t, s_t)      (float32, as neurons.fused)

so the spikes and ``v_T`` are bit for bit those of ``fused_multistep(x.float(), ...)`` (``v_T`` then rounded to
``x``'s dtype), and ``dL/dx`` is that call's float32 gradient rounded once to ``x``'s dtype.

Saved for backward: ``x`` itself (already in memory, half the bytes of a float32 membrane); the backward kernel
recomputes ``h`` from it (``lif_backward`` with ``h`` of 0 rows: chunk by chunk in cache on the CPU, into a
transient float32 ``[T, N]`` buffer on CUDA), bit for bit the forward's. ``inplace=True`` writes ``dL/dx`` over
``x`` in backward (``x`` is consumed) and, without a gradient, the spikes over ``x``; the forward never changes
``x``. The gradient of ``s.sum()`` (the same ``dL/ds`` at every step, a stride-0 tensor) is read as one row by the
kernels, never expanded. A time-invariant input (direct encoding) runs its one step in float32 through
``neurons.fused``. No pooling and no returned membrane trace (``low_precision_supported``): those take the
reference loop.
"""

from __future__ import annotations

import numpy as np
import torch

from deepspike.coding.rate import direct, time_invariant
from deepspike.core.first_order import first_order_backward
from deepspike.core.precision import LOW_PRECISION
from deepspike.neurons.fused import (
    FUSED_SURROGATES,
    _backward_kernel,
    _dense_steps,
    _grad_rows,
    _like_steps,
    _repeated_step,
    _rows,
    _run,
    _triton_kernels,
    fused_available,
    fused_multistep,
    may_overwrite,
    needs_autograd,
    refuse_second_backward,
    switched_on,
    uses_triton,
)
from deepspike.neurons.fused_constants import RESET_CODES
from deepspike.neurons.params import NeuronParams

CHUNK_ELEMENTS = 1 << 20  # float32 elements of one chunk buffer (4 MiB): columns = this / T (session18_scripts)


def low_precision_supported(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None = None) -> bool:
    """Whether ``low_precision_multistep`` can run ``x [T, B, ...]``: a non-empty bfloat16 / float16 tensor (any
    layout: steps that are not dense are copied once, a time-invariant view runs its one step), a surrogate the
    kernels know, float membranes (no ``state_quant``), ``v0`` (if given) on ``x``'s device, the fused switch on,
    and the kernels for ``x``: numba on the CPU (``fused_available``), triton where ``neurons.fused.uses_triton``."""
    if x.dtype not in LOW_PRECISION or x.numel() == 0 or params.spike_fn.name not in FUSED_SURROGATES:
        return False
    if params.state_quant is not None:
        return False
    if v0 is not None and v0.device != x.device:
        return False
    if uses_triton(x):
        return switched_on() and _triton_kernels() is not None
    return x.device.type == "cpu" and fused_available()


def _chunk_width(t: int, n: int) -> int:
    """Columns of the widest chunk of ``[T, N]`` rows: ``T x width`` float32 elements fit ``CHUNK_ELEMENTS``."""
    return min(n, max(1, CHUNK_ELEMENTS // t))


def _chunks(t: int, n: int) -> list[tuple[int, int]]:
    """Column ranges ``[lo, hi)`` of ``[T, N]`` rows, each at most ``_chunk_width`` wide."""
    width = _chunk_width(t, n)
    return [(lo, min(n, lo + width)) for lo in range(0, n, width)]


def _chunk_buffer(rows: int, t: int, n: int) -> torch.Tensor:
    """Flat float32 buffer for ``rows`` rows of the widest chunk of ``[T, N]`` rows (``_chunks``)."""
    return torch.empty(rows * _chunk_width(t, n), dtype=torch.float32)


def _as_float(rows: torch.Tensor, lo: int, hi: int, buf: torch.Tensor) -> torch.Tensor:
    """Columns ``[lo, hi)`` of ``rows [R, N]`` converted into a dense float32 ``[R, hi - lo]`` view of ``buf``."""
    out = buf[: rows.shape[0] * (hi - lo)].view(rows.shape[0], hi - lo)
    return out.copy_(rows[:, lo:hi])


def _step_state(v0: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """A float32 ``[B, ...]`` state with the memory layout of one step of ``x`` (the kernels' ``[N]`` order):
    ``v0`` converted, or zeros."""
    v = torch.empty_strided(x.shape[1:], x[0].stride(), dtype=torch.float32, device=x.device)
    return v.zero_() if v0 is None else v.copy_(v0.detach())


def _forward_rows(x: torch.Tensor, v: torch.Tensor, s: torch.Tensor, params: NeuronParams) -> None:
    """``lif_forward`` on rows ``x, s [T, N]`` (``s`` may be ``x``) and the float32 state ``v [N]`` (in: ``v_0``,
    out: ``v_T``)."""
    _run("lif_forward", x, v, s, torch.empty((0, 0), dtype=torch.float32, device=x.device), np.float32(params.decay),
         np.float32(params.threshold), RESET_CODES[params.reset], False, np.zeros(6, dtype=np.int64))


def _backward_rows(params: NeuronParams, x: torch.Tensor, v: torch.Tensor, gs: torch.Tensor, gv: torch.Tensor,
                   gx: torch.Tensor) -> None:
    """``lif_backward`` recomputing ``h`` from rows ``x [T, N]`` and ``v_0 = v [N]``: ``gs`` the ``[T, N]`` (or one
    ``[1, N]``) rows of ``dL/ds``, ``gv [N]`` ``dL/dv_T`` in and ``dL/dv_0`` out, ``dL/dx`` into rows ``gx`` (may
    be ``x``)."""
    _backward_kernel(params, torch.empty((0, x.shape[1]), dtype=torch.float32, device=x.device), gs, x, False, gv, gx,
                     np.zeros(6, dtype=np.int64), x, v)


def _forward(x: torch.Tensor, v0: torch.Tensor | None, params: NeuronParams, s_over_x: bool):
    """``(s [T, B, ...] in x's dtype and step layout, v_T [B, ...] float32)``; ``s_over_x``: the spikes are
    written into ``x``'s memory. The Triton kernels read ``x`` and write ``s`` in their dtype themselves; the numba
    kernels run on float32 chunks."""
    t = x.shape[0]
    x2 = _rows(x.detach(), t)
    s = x.detach() if s_over_x else _like_steps(x.shape, x[0].stride(), x.device, x.dtype)
    s2 = _rows(s, t)
    v = _step_state(v0, x)
    v_rows = _rows(v, 1)[0]
    if uses_triton(x):
        _forward_rows(x2, v_rows, s2, params)
        return s, v
    buf = _chunk_buffer(t, t, x2.shape[1])
    for lo, hi in _chunks(t, x2.shape[1]):
        xc = _as_float(x2, lo, hi, buf)
        _forward_rows(xc, v_rows[lo:hi], xc, params)
        s2[:, lo:hi].copy_(xc)  # the kernel wrote the spikes over the chunk's input
    return s, v


def _backward(x: torch.Tensor, v0: torch.Tensor | None, g_s: torch.Tensor | None, g_v: torch.Tensor | None,
              params: NeuronParams, gx: torch.Tensor) -> torch.Tensor:
    """BPTT of ``_forward``: writes ``dL/dx`` into ``gx`` (``x``'s dtype and layout; may be ``x`` itself: each chunk
    of ``x`` is read before that chunk of ``gx`` is written) and returns ``dL/dv_0`` (float32, ``[B, ...]``)."""
    t, triton = x.shape[0], uses_triton(x)
    x2, gx2 = _rows(x, t), _rows(gx, t)
    n = x2.shape[1]
    gs2 = _grad_rows(g_s, t, n, x[0].stride(), True, x.device)  # one row for the dL/ds of s.sum()
    gv = _step_state(g_v, x)
    gv_rows, v_rows = _rows(gv, 1)[0], _rows(_step_state(v0, x), 1)[0]
    if triton:
        _backward_rows(params, x2, v_rows, gs2, gv_rows, gx2)
        return gv
    buf, gbuf = _chunk_buffer(t, t, n), _chunk_buffer(gs2.shape[0], t, n)  # gs2: T rows, or the one of s.sum()
    for lo, hi in _chunks(t, n):
        xc = _as_float(x2, lo, hi, buf)
        _backward_rows(params, xc, v_rows[lo:hi], _as_float(gs2, lo, hi, gbuf), gv_rows[lo:hi], xc)
        gx2[:, lo:hi].copy_(xc)  # the kernel wrote dL/dx over the chunk's input
    return gv


class _LowPrecisionMultistep(torch.autograd.Function):
    """``(x [T, B, ...], v0 [B, ...] or None) -> (s, v_T)`` in ``x``'s dtype; saves ``x`` (module docstring)."""

    @staticmethod
    def forward(ctx, x, v0, params, inplace):
        s, v = _forward(x, v0, params, s_over_x=False)
        ctx.save_for_backward(x, v0)
        ctx.params, ctx.inplace, ctx.consumed = params, inplace, False
        ctx.set_materialize_grads(False)
        return s, v.to(_state_dtype(x, v0))

    @staticmethod
    @first_order_backward("the fused bfloat16/float16 IF/LIF kernel (neurons.fused_low_precision); "
                          "set DEEPSPIKE_FUSED=0 for the neuron's autograd loop")
    def backward(ctx, g_s, g_v):
        refuse_second_backward(ctx)
        x, v0 = ctx.saved_tensors
        gx = x if ctx.inplace else _like_steps(x.shape, x[0].stride(), x.device, x.dtype)
        ctx.consumed = ctx.inplace
        gv0 = _backward(x, v0, g_s, g_v, ctx.params, gx)
        if ctx.inplace:
            torch.autograd.graph.increment_version(x)
        g_v0 = gv0.to(v0.dtype) if v0 is not None and ctx.needs_input_grad[1] else None
        return gx, g_v0, None, None


def _state_dtype(x: torch.Tensor, v0: torch.Tensor | None) -> torch.dtype:
    """The dtype of the returned ``v_T``: ``x``'s, or what ``x`` and ``v0`` promote to (as the reference loop's)."""
    return x.dtype if v0 is None else torch.promote_types(x.dtype, v0.dtype)


def carried_start(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None) -> torch.Tensor | None:
    """The initial membrane of a call whose ``v_T`` a module keeps for its next call (``neurons.carry``): ``v0``, or,
    for the first call (``v0`` None) of a bfloat16 / float16 ``x`` that these kernels run (``low_precision_supported``),
    float32 zeros ``[B, ...]``. ``v_T`` then comes back in float32 (``_state_dtype``), and the next call starts from
    the float32 state one call on all the steps keeps, not from its rounding to ``x``'s dtype (which changed the spikes
    of a net streamed a step at a time)."""
    if v0 is not None or not torch.is_tensor(x) or x.dim() < 2 or not low_precision_supported(x, params):
        return v0
    return torch.zeros(x.shape[1:], dtype=torch.float32, device=x.device)


def _time_invariant_multistep(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None):
    """A time-invariant ``x`` (a stride-0 view of one ``[B, ...]`` step, e.g. a direct-encoded first layer): that step
    converted to float32 and run by ``neurons.fused`` (which reads it at every step and sums its gradient over T in
    the kernel, saving nothing of size T); the outputs rounded to ``x``'s dtype. Costs one float32 step, and the
    float32 spikes until they are rounded. The step is the tensor ``x`` repeats (``coding.rate.direct``), else
    ``x[0]`` (its gradient then reaches ``x`` through the select and the expansion, summed over T all the same)."""
    step = _repeated_step(x)
    step = (x[0] if step is None else step).float()
    s, v = fused_multistep(direct(step, x.shape[0]), params, None if v0 is None else v0.float())
    return s.to(x.dtype), v.to(_state_dtype(x, v0))


def low_precision_multistep(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None = None,
                            inplace: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``neuron_multistep(x, params, v0)`` for a bfloat16 / float16 ``x [T, B, ...]`` (``low_precision_supported``),
    run in float32 by the fused kernels (module docstring). Returns ``(s [T, B, ...], v_T [B, ...])``: ``s`` in
    ``x``'s dtype and step layout, ``v_T`` in ``x``'s dtype (promoted with ``v0``'s, as the reference loop).
    ``inplace``: ``dL/dx`` is written over ``x`` in backward (unless ``x`` is a leaf or a view of one), or without a
    gradient the spikes over ``x`` in forward; the forward never changes ``x`` when a gradient is recorded. The
    values are the same either way."""
    if time_invariant(x):
        return _time_invariant_multistep(x, params, v0)
    if not _dense_steps(x):
        x = x.contiguous()  # one copy, as neurons.fused makes
    if needs_autograd(x, v0):
        return _LowPrecisionMultistep.apply(x, v0, params, inplace and may_overwrite(x))
    s, v = _forward(x, v0, params, s_over_x=inplace)
    return s, v.to(_state_dtype(x, v0))
