"""A linear layer's three GEMMs through oneDNN on CPUs where torch's default BLAS takes a slow path.

``nn.Linear`` on the CPU computes ``y = x W^T + b`` and its gradients ``dL/dx = g W``, ``dL/dW = g^T x`` with the
BLAS torch's wheels are built with, Intel's MKL. On AMD CPUs MKL dispatches its sgemm to a slower code path: on this
project's 2-core AMD EPYC (avx512), ``[8000, 4096] x [4096, 4096]`` in float32 with two threads took 1,276-1,471 ms
through MKL, 589 ms through oneDNN's matmul (the library torch's own convolutions run on) and 754 ms through
JAX/XLA (session 14; ``benchmarks/RESULTS.md``, issue 26). ``linear`` routes the three GEMMs of a large float32 CPU
linear layer (forward, input gradient, weight gradient) through oneDNN
(``torch.ops.mkldnn._linear_pointwise``)::

    y = lin(x, W) + b,   dL/dx = lin(g, W^T),   dL/db = sum_rows g,
    dL/dW = g^T x = sum_r lin(g[r]^T, x[r]^T)   (row blocks r of WEIGHT_GRAD_ROWS; see weight_grad)
    (lin(a, w) = a w^T, x [M, K], W [N, K], g [M, N])

oneDNN's product packs its second operand (the "weight") into its own layout on every call, a copy of it whole:
``lin(g^T, x^T)`` in one call would copy ``x [M, K]`` (131 MB in the Open Neuromorphic benchmark). ``weight_grad``
therefore sums the product over blocks of ``WEIGHT_GRAD_ROWS`` rows of ``x`` and ``g`` (each block of ``x`` is a
dense transposed view, packed in a few MB) and, within a block, over slices of the output's rows, so that its
temporaries stay a few MB: session 17 measured it 1.6-1.9x faster than MKL's ``g^T x`` on every shape it tried,
``[8000, 4096]^T x [8000, 4096]`` in 692 ms instead of 1,300 (``benchmarks/RESULTS.md``, issue 26).

The same float32 arithmetic in another summation order: results differ from ``F.linear``'s in the last bits, so
it is used only where it pays (``uses_onednn``): ``DEEPSPIKE_CPU_MATMUL=onednn`` always, ``=torch`` never, and by
default (``auto``) on AMD CPUs with an MKL build of torch for GEMMs of at least ``MIN_MULTIPLY_ADDS``; small layers
keep torch's path. ``TimeDistributed`` runs its ``nn.Linear`` through ``linear`` (one GEMM over ``[T*B, K]``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deepspike.core.compile_support import eager_under_compile
from deepspike.core.env import env_choice
from deepspike.core.first_order import first_order_backward

MIN_MULTIPLY_ADDS = 1 << 28  # M N K; below it the GEMM is too small to matter (and keeps torch's exact numbers)
WEIGHT_GRAD_ROWS = 512  # rows of x and g per block of the weight gradient (module docstring)
WEIGHT_GRAD_TILE = 1 << 22  # output elements per call within a block: [rows, K] with rows * K <= this (16 MB)
POLICIES = ("auto", "onednn", "torch")


def _read_mkl_on_amd() -> bool:
    """Whether torch's BLAS is MKL and the CPU is AMD's (MKL's slow path)."""
    if not torch.backends.mkl.is_available():
        return False
    try:
        return "AuthenticAMD" in Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False


# Read once at import (0.1 ms): constants that torch.compile reads without tracing the calls (it cannot trace them).
_HAS_ONEDNN = torch.backends.mkldnn.is_available()
_MKL_ON_AMD = _read_mkl_on_amd()


def _mkl_on_amd() -> bool:
    """``_read_mkl_on_amd()`` as read at import."""
    return _MKL_ON_AMD


def uses_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``linear`` runs ``x [M, K] @ weight [N, K]^T`` through oneDNN (module docstring)."""
    policy = env_choice("DEEPSPIKE_CPU_MATMUL", "auto", POLICIES)
    if policy == "torch" or not _HAS_ONEDNN:
        return False
    if x.device.type != "cpu" or x.dim() != 2 or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if weight.dim() != 2 or x.shape[1] != weight.shape[1]:  # torch's path says what does not fit; oneDNN cannot
        return False
    if policy == "onednn":
        return True
    return _mkl_on_amd() and x.shape[0] * weight.shape[0] * weight.shape[1] >= MIN_MULTIPLY_ADDS


def _product(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a w^T (+ bias)`` by oneDNN, ``a [M, K]``, ``w [N, K]`` as given (views are read through their strides;
    oneDNN packs ``w`` into its own layout) -> ``[M, N]``."""
    return torch.ops.mkldnn._linear_pointwise(a, w, bias, "none", [None], "")


def _lin(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``_product`` of ``a`` and ``w`` made dense."""
    return _product(a.contiguous(), w.contiguous(), bias)


def weight_grad(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``dL/dW = g^T x`` by oneDNN, ``g [M, N]``, ``x [M, K]`` -> ``[N, K]``, summed over row blocks (module docstring):

        dW[n0:n1] = sum_{blocks r} lin(g[r, n0:n1]^T, x[r]^T),   r = WEIGHT_GRAD_ROWS rows of x and g

    Every call's operands are views (``x[r]^T`` dense transposed, which oneDNN packs; ``g[r, n0:n1]^T`` strided); the
    temporaries are one block of ``x`` packed and one ``[n1 - n0, K]`` partial product.
    """
    x = x.contiguous()  # so that every row block's transpose is a dense view
    rows, (n, k) = WEIGHT_GRAD_ROWS, (g.shape[1], x.shape[1])
    tile = max(1, min(n, WEIGHT_GRAD_TILE // max(k, 1)))
    out = torch.empty(n, k, dtype=x.dtype)
    for start in range(0, x.shape[0], rows):
        x_block_t, g_block = x[start : start + rows].t(), g[start : start + rows]
        for n0 in range(0, n, tile):
            part = _product(g_block[:, n0 : n0 + tile].t(), x_block_t)
            if start == 0:
                out[n0 : n0 + tile] = part
            else:
                out[n0 : n0 + tile] += part
    return out if x.shape[0] else out.zero_()


class _OneDNNLinear(torch.autograd.Function):
    """``(x [M, K], W [N, K], b [N] or None) -> x W^T + b``, the gradients as in the module docstring."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)  # x as given: a saved-tensor hook (spike_storage) may pack it
        ctx.has_bias = bias is not None
        return _lin(x, weight, None if bias is None else bias.detach())

    @staticmethod
    @first_order_backward("the oneDNN linear layer (layers.cpu_linear); "
                          "set DEEPSPIKE_CPU_MATMUL=torch for torch's linear")
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        g_x = _lin(g, weight.t()) if ctx.needs_input_grad[0] else None  # g W
        g_w = weight_grad(g, x) if ctx.needs_input_grad[1] else None  # g^T x over row blocks
        g_b = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return g_x, g_w, g_b


@eager_under_compile  # under torch.compile: one graph break, the autograd Function run eagerly
def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``_OneDNNLinear`` of ``x [M, K]``, ``weight [N, K]``, ``bias [N]`` -> ``[M, N]``."""
    return _OneDNNLinear.apply(x, weight, bias)


def linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``: through oneDNN where ``uses_onednn`` says so (a float32 ``x [M, K]`` on the CPU) and the module
    has no hooks, else the module itself."""
    if module._forward_hooks or module._forward_pre_hooks or not uses_onednn(x, module.weight):
        return module(x)
    return _onednn_linear(x, module.weight, module.bias)
