"""Fused multi-step IF/LIF update: one numba kernel call over all T steps, forward and backward.

``fused_multistep`` computes exactly what ``neurons.dynamics.neuron_multistep``'s reference loop
computes (same spikes bit for bit, membranes and gradients equal up to float32 summation order), for
every reset mode, ``detach_reset``, ``leak_grad`` and surrogate, but

* runs the time loop inside one compiled kernel instead of ~10 tensor ops per step in Python;
* saves only the pre-reset membrane ``h [T, B, ...]`` for the backward pass (spikes are re-derived as
  ``h - th >= 0``; the reference keeps ~5 tensors per step alive);
* saves nothing at all when no gradient is needed (inference);
* with ``inplace=True`` (like ``nn.ReLU(inplace=True)``) writes ``h`` over the input currents ``x`` and,
  in backward, ``dL/dx`` over the saved ``h``: one ``[T, B, ...]`` buffer less at the forward peak and
  one less at the backward peak. ``x`` holds ``h`` afterwards (autograd's version counter catches any
  other user that saved ``x``); such a graph can be backpropagated once (``retain_graph`` re-use raises).

``neuron_multistep`` dispatches here automatically when ``fused_supported`` says yes: CPU float32
tensors, numba importable, a surrogate the kernel knows, and the switch not off. Switch it off with
the environment variable ``DEEPSPIKE_FUSED=0`` (read at each call) or ``neuron_multistep(..., fused=False)``.
Double backward through the fused path raises an error (``once_differentiable``); use ``fused=False``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from deepspike.coding.rate import time_invariant
from deepspike.neurons.params import NeuronParams

_KERNELS: list = []  # [module] once imported, [None] when numba is missing (imported lazily: numba is slow to load)

ENV_SWITCH = "DEEPSPIKE_FUSED"
FUSED_SURROGATES = ("rectangular", "sigmoid", "fast_sigmoid", "arctan")  # = fused_kernels.SURROGATE_CODES


def _kernels():
    """The ``fused_kernels`` module, or None without numba (the optional "fast" extra)."""
    if not _KERNELS:
        try:
            from deepspike.neurons import fused_kernels
        except ImportError:  # pragma: no cover - exercised only without numba
            fused_kernels = None
        _KERNELS.append(fused_kernels)
    return _KERNELS[0]


def fused_available() -> bool:
    """True when numba is importable and ``DEEPSPIKE_FUSED`` is not ``0``/``false``/``off``/``no``."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    return _kernels() is not None


def kernel_ready(x: torch.Tensor) -> bool:
    """Whether a numba time-loop kernel may run on ``x``: numba and the switch on (``fused_available``) and
    ``x`` a CPU float32 tensor with at least one element (used here and by ``layers.spikebp_lif``)."""
    return fused_available() and x.device.type == "cpu" and x.dtype == torch.float32 and x.numel() > 0


def fused_supported(x: torch.Tensor, params: NeuronParams, v0: torch.Tensor | None = None) -> bool:
    """Whether ``fused_multistep`` can run ``x [T, B, ...]`` with ``params`` (and ``v0 [B, ...]``).

    Needs: ``kernel_ready(x)``, ``v0`` (if given) also CPU float32, and a surrogate the kernel implements.
    """
    if not kernel_ready(x):
        return False
    if v0 is not None and (v0.device.type != "cpu" or v0.dtype != torch.float32):
        return False
    return params.spike_fn.name in FUSED_SURROGATES


def run_numba_kernel(kernel, *args) -> None:
    """Call a numba kernel with as many threads as torch uses, and leave torch's thread count as it was.

    numba's OpenMP layer shares the OpenMP runtime with torch; starting its pool sets the process-wide
    thread count to numba's pool size, which would silently change ``torch.get_num_threads()``.
    """
    import numba

    torch_threads = torch.get_num_threads()
    n = max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    kernel(*args)
    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)


def _forward(
    x: torch.Tensor, v0: torch.Tensor | None, params: NeuronParams, store_h: bool, h_over_x: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run the forward kernel; returns ``(s [T, B, ...], v_T [B, ...], h [T, B, ...] or None)``.

    ``h_over_x``: write ``h`` into ``x``'s own (contiguous) memory; the kernel reads ``x[t, n]`` before it
    writes ``h[t, n]``, so aliasing is exact. A time-invariant ``x`` (stride 0 along T, e.g. the output of a
    layer that ran once on a direct-encoded image) is passed as one row and never copied T times.
    """
    t = x.shape[0]
    if time_invariant(x):  # the same currents at every step (an expanded view): pass one row
        x2 = x[0].detach().contiguous().view(1, -1)  # [T, B, ...] (stride 0 in T) -> [1, N]
        h_over_x = False
    else:
        x2 = x.detach().contiguous().view(t, -1)  # [T, B, ...] -> [T, N]
    n = x2.shape[1]
    v = torch.zeros(n, dtype=x.dtype) if v0 is None else v0.detach().reshape(-1).clone()  # [N]
    s = torch.empty((t, n), dtype=x.dtype)
    h = (x2 if h_over_x else torch.empty((t, n), dtype=x.dtype)) if store_h else None
    run_numba_kernel(
        _kernels().lif_forward,
        x2.numpy(),
        v.numpy(),
        s.numpy(),
        (h if store_h else s).numpy(),  # an unused placeholder when h is not stored
        np.float32(params.decay),
        np.float32(params.threshold),
        _kernels().RESET_CODES[params.reset],
        store_h,
    )
    shape = x.shape
    return s.view(shape), v.view(shape[1:]), (h.view(shape) if store_h else None)


class _FusedMultistep(torch.autograd.Function):
    """``(x [T, B, ...], v0 [B, ...] or None) -> (s, v_T, h)``; backward = ``fused_kernels.lif_backward``.

    ``inplace`` (module docstring): ``h`` lives in ``x``'s memory and backward writes ``dL/dx`` over it
    unless the caller keeps ``h`` (``keep_h``).
    """

    @staticmethod
    def forward(ctx, x, v0, params, inplace, keep_h):
        inplace = inplace and x.is_contiguous()
        s, v, h = _forward(x, v0, params, store_h=True, h_over_x=inplace)
        if inplace:
            # x's memory now holds h. Not mark_dirty (it forbids views of x, such as TimeDistributed's
            # outputs, in a multi-output Function): bump x's version instead, so any other node that saved
            # x for its backward fails loudly there rather than reading h.
            torch.autograd.graph.increment_version(x)
        ctx.save_for_backward(h)
        ctx.params = params
        ctx.has_v0 = v0 is not None
        ctx.grad_over_h = inplace and not keep_h
        ctx.consumed = False
        ctx.set_materialize_grads(False)
        return s, v, h

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_v, g_h):
        if ctx.consumed:
            raise RuntimeError("an inplace spiking neuron's graph can be backpropagated only once; "
                               "build the neuron with inplace=False to use retain_graph")
        (h,) = ctx.saved_tensors
        p: NeuronParams = ctx.params
        t = h.shape[0]
        h2 = h.view(t, -1)  # [T, B, ...] -> [T, N]
        gs = torch.zeros_like(h2) if g_s is None else g_s.contiguous().view(t, -1)
        gh = h2 if g_h is None else g_h.contiguous().view(t, -1)  # h2 is a placeholder when unused
        gv = torch.zeros(h2.shape[1], dtype=h.dtype) if g_v is None else g_v.reshape(-1).clone()  # [N]
        # The kernel reads h[t, n] before writing gx[t, n], so dL/dx may overwrite h exactly.
        gx = h2 if ctx.grad_over_h and g_h is None else torch.empty_like(h2)
        ctx.consumed = gx is h2
        code, p1, p2 = _kernels().surrogate_constants(p.spike_fn.name, p.spike_fn.params)
        kb = p.decay if p.leak_grad else 1.0
        run_numba_kernel(
            _kernels().lif_backward,
            h2.numpy(),
            gs.numpy(),
            gh.numpy(),
            g_h is not None,
            gv.numpy(),
            gx.numpy(),
            np.float32(kb),
            np.float32(p.threshold),
            _kernels().RESET_CODES[p.reset],
            p.detach_reset,
            code,
            p1,
            p2,
        )
        g_v0 = gv.view(h.shape[1:]) if ctx.has_v0 and ctx.needs_input_grad[1] else None
        return gx.view(h.shape), g_v0, None, None, None


def fused_multistep(
    x: torch.Tensor,
    params: NeuronParams,
    v0: torch.Tensor | None = None,
    return_membrane: bool = False,
    inplace: bool = False,
):
    """The fused equivalent of ``neuron_multistep`` (same arguments, same returns; module docstring).

    x: ``[T, B, ...]`` CPU float32 (``fused_supported``); v0: ``[B, ...]`` or None (zeros).
    Returns ``(s [T, B, ...], v_T [B, ...])``, plus the pre-reset membrane ``h [T, B, ...]`` with
    ``return_membrane=True``. Without autograd (no grad mode, or no input requiring grad) nothing is saved.
    ``inplace``: reuse ``x``'s memory for ``h`` and, in backward, for ``dL/dx`` (module docstring); the
    values and gradients are the same either way.
    """
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or (v0 is not None and v0.requires_grad))
    if needs_grad:
        s, v, h = _FusedMultistep.apply(x, v0, params, inplace, return_membrane)
    else:
        s, v, h = _forward(x, v0, params, store_h=return_membrane)
    return (s, v, h) if return_membrane else (s, v)
