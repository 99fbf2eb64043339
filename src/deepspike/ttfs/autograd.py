"""``torch.autograd.Function`` of the closed-form TTFS layer (exact gradients, nothing B x M x N saved).

Forward returns the first spike times ``t_out`` [B, O, H', W']. Saved for backward: the inputs, the
parameters, ``t_out`` and the slope ``D`` [B, O, H', W'] (the causal-set denominator). Backward recomputes
the causal set as ``C = {i : t_i < t_out}`` (an input that arrives exactly at ``t_out`` adds nothing to
``V(t_out)``; the torch, numba and native forwards keep ``t_out`` strictly after the last input they counted,
so the sets agree where the float spike time would round onto that input) and evaluates the gradient formulas of
``deepspike.ttfs.gradients`` chunk-wise.

``layer_times`` is what the layer functions call: it picks the backend, runs float16/bfloat16 times in float32
(the compiled kernels take float32/float64, and the exp kernel's ``exp(t/tau)`` overflows float16 past
``t/tau ~ 11``) and returns them in their own dtype, and computes an empty batch on the torch backend.
"""

from __future__ import annotations

import math
import os

import torch

from deepspike.core.compile_support import eager_under_compile
from deepspike.core.errors import ConfigError
from deepspike.core.first_order import first_order_backward
from deepspike.core.precision import LOW_PRECISION
from deepspike.ttfs import backend_native, backend_numba, backend_torch, backend_triton
from deepspike.ttfs._validate import check_values
from deepspike.ttfs.backend_triton import HAVE_TRITON
from deepspike.ttfs.kernels_numba import HAVE_NUMBA

_IMPLS = {"native": backend_native, "numba": backend_numba, "triton": backend_triton, "torch": backend_torch}


def _cpu_fallback() -> str:
    return "numba" if HAVE_NUMBA else "torch"


def resolve_backend(backend: str, t_in: torch.Tensor) -> str:
    """``auto`` -> ``native`` for float32 CPU tensors when its C kernels build (``deepspike.core.native``), else
    ``numba`` for CPU tensors when numba is installed; ``triton`` for CUDA tensors when triton is installed;
    else ``torch``. ``native`` needs float32 CPU tensors. ``triton`` on CPU tensors runs only in Triton's
    interpreter (``TRITON_INTERPRET=1``, for tests)."""
    if backend == "auto":
        if t_in.device.type == "cpu":
            native_ok = t_in.dtype == torch.float32 and backend_native.library() is not None
            return "native" if native_ok else _cpu_fallback()
        return "triton" if (HAVE_TRITON and t_in.device.type == "cuda") else "torch"
    if backend == "native":
        if t_in.device.type != "cpu" or t_in.dtype != torch.float32:
            raise ConfigError(f"TTFS backend 'native' runs on float32 CPU tensors, got {t_in.dtype} on {t_in.device}")
        if backend_native.library() is None:
            raise ConfigError(f"TTFS backend 'native' unavailable: {backend_native.unavailable_reason()}")
    if backend == "triton" and not HAVE_TRITON:
        raise ConfigError("TTFS backend 'triton' requested but triton is not installed; use backend='torch'")
    if backend == "triton" and t_in.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ConfigError(f"TTFS backend 'triton' runs on CUDA tensors (or in Triton's interpreter, "
                          f"TRITON_INTERPRET=1), got device {t_in.device}")
    if backend == "numba" and not HAVE_NUMBA:
        raise ConfigError("TTFS backend 'numba' requested but numba is not installed; use backend='torch'")
    if backend == "numba" and t_in.device.type != "cpu":
        raise ConfigError(f"TTFS backend 'numba' runs on CPU tensors only, got device {t_in.device}")
    return backend


@eager_under_compile  # its host reads of the weights: one clean graph break, not one per read and test
def weight_shift(weight: torch.Tensor, bias: torch.Tensor | None, theta: float, dtype: torch.dtype) -> int:
    """The ``k`` for which a layer's weights, bias and theta are multiplied by ``2^-k`` before it is solved: 0 unless a
    neuron's weights can sum past ``2^12`` in absolute value (``max |w| x fan_in``), else the exponent of the next
    power of two of that bound, at most ``log2(theta / tiny)`` (theta stays a normal number of ``dtype``).

    ``V = theta <=> V 2^-k = theta 2^-k`` and each PSP is linear in its weight, so the spike times are the same, and
    in binary floating point exactly so; the solvers' sums ``sum_C w exp((t - ref)/tau)`` (exp: up to ``e^80`` in the
    torch solver, ``e^30`` in the compiled kernels) and ``sum_C w (t - ref)`` (relpsp) then stay inside the dtype,
    where weights of ``1e20`` with ``theta = 1e20`` overflowed them into wrong times and NaN."""
    largest = float(weight.detach().abs().amax())
    if bias is not None and bias.numel():
        largest = max(largest, float(bias.detach().abs().amax()))
    bound = largest * (weight[0].numel() + (bias is not None))
    if not (math.isfinite(bound) and bound > 2.0**12):  # NaN or inf weights: the value scans refuse them
        return 0
    return max(0, min(math.ceil(math.log2(bound)), math.floor(math.log2(theta) - math.log2(torch.finfo(dtype).tiny))))


def layer_times(t_in, weight, bias, stride, padding, kernel, theta, tau, backend, chunk_elements, what):
    """First spike times ``[B, O, H', W']`` of a conv TTFS layer for validated arguments (``[B, C, H, W]`` times,
    ``[O, C, kh, kw]`` weights): the backend resolved (``resolve_backend``), the values scanned where the native
    kernels do not scan them, float16/bfloat16 computed in float32 and returned in the input's dtype (gradients
    in each tensor's own dtype), an empty batch (B = 0) computed by the torch backend (nothing to sweep)."""
    dtype = t_in.dtype
    if dtype in LOW_PRECISION:
        t_in = t_in.float()
    if dtype in LOW_PRECISION or weight.dtype in LOW_PRECISION:
        weight = weight.to(t_in.dtype)
        bias = None if bias is None else bias.to(t_in.dtype)
    theta = float(theta)  # (a 0-d tensor or numpy number too)
    # theta rounds to 0 in the dtype at or below half its smallest subnormal (2^-150 for float32); a Python
    # comparison, not a tensor's: that was a torch.compile graph break per layer call
    finfo = torch.finfo(t_in.dtype)  # tiny x eps: the smallest subnormal
    if not theta > finfo.tiny * finfo.eps / 2:  # the kernels then fired where V = 0
        raise ConfigError(f"{what}: threshold theta = {theta!r} is 0 in {t_in.dtype}, the dtype the times are "
                          f"computed in; use theta >= {torch.finfo(t_in.dtype).tiny:.4g} or float64 times")
    shift = weight_shift(weight, bias, theta, t_in.dtype)
    if shift:  # exact (a power of two), and the gradients flow through the product
        factor = 2.0**-shift  # 2^-k, not a division by 2^k: that is inf in float32 for k >= 128
        weight, bias, theta = weight * factor, None if bias is None else bias * factor, theta * factor
    impl = resolve_backend(backend, t_in)
    if impl != "native":  # the native kernels scan the times and parameters themselves
        check_values(t_in, weight, bias, what)
    if t_in.shape[0] == 0:
        impl = "torch"
    t_out = SpikeTimeConv.apply(
        t_in, weight, bias, stride, padding, kernel, float(theta), float(tau), impl, int(chunk_elements)
    )
    return t_out.to(dtype)


class SpikeTimeConv(torch.autograd.Function):
    """Closed-form first-spike times of a conv TTFS layer; dense layers are the 1x1-image case."""

    @staticmethod
    def forward(ctx, t_in, weight, bias, stride, padding, kernel, theta, tau, backend, chunk_elements):
        args = (t_in.detach(), weight.detach(), None if bias is None else bias.detach(), stride, padding, kernel,
                theta, tau, chunk_elements)
        result, ctx.packed = None, None
        if backend == "native":  # None: a layer or span the native kernels do not take
            if backend_native.supports(t_in, weight):  # the kernels scan times and parameters themselves
                result = backend_native.forward(*args)
            else:
                check_values(t_in, weight, bias, "TTFS layer")
            if result is not None:
                *result, ctx.packed = result
            backend = "native" if result is not None else _cpu_fallback()
        t_out, slope = result if result is not None else _IMPLS[backend].forward(*args)
        t_out = t_out.to(t_in.dtype)
        ctx.save_for_backward(t_in, weight, bias, t_out, slope.to(t_in.dtype))
        ctx.conf = (stride, padding, kernel, tau, backend, chunk_elements)
        return t_out

    @staticmethod
    @first_order_backward("the closed-form TTFS layer (ttfs.autograd), whose written-out gradient has no "
                          "derivative of its own")
    def backward(ctx, grad_out):
        t_in, weight, bias, t_out, slope = ctx.saved_tensors
        stride, padding, kernel, tau, backend, chunk_elements = ctx.conf
        impl = backend_torch
        if backend in ("native", "numba") and (kernel != "exp" or backend_numba.span_ok(t_in, t_out, tau)):
            impl = _IMPLS[backend]
        extra = {"packed": ctx.packed} if impl is backend_native else {}  # the weights as the forward packed them
        with torch.no_grad():
            grad_t, grad_w, grad_b = impl.backward(
                t_in.detach(), weight.detach().to(t_in.dtype),
                None if bias is None else bias.detach().to(t_in.dtype),
                stride, padding, kernel, tau, t_out, slope, grad_out, chunk_elements,
                need_input_grad=ctx.needs_input_grad[0], **extra,
            )
        grad_w = grad_w.to(weight.dtype) if ctx.needs_input_grad[1] else None
        grad_b = grad_b.to(bias.dtype) if (bias is not None and ctx.needs_input_grad[2]) else None
        return grad_t, grad_w, grad_b, None, None, None, None, None, None, None
