"""The codes and float32 constants shared by the fused neuron kernels (numba ``fused_kernels`` on CPU, Triton
``fused_triton`` on CUDA); free of numba and triton so either backend can load without the other."""

from __future__ import annotations

import numpy as np

# the kernels' surrogate derivatives (``fused_kernels._row_surrogate``, ``fused_triton._surrogate``); triangular and
# piecewise_quadratic are one tent, ``p1 max(0, 1 - p2 |u|)``, with their own constants
SURROGATE_CODES = {"rectangular": 0, "sigmoid": 1, "fast_sigmoid": 2, "arctan": 3, "triangular": 4,
                   "piecewise_quadratic": 4, "erf": 5, "straight_through": 6}
RESET_CODES = {"zero": 0, "subtract": 1, "none": 2}

ONE = np.float32(1.0)
ZERO = np.float32(0.0)

# numba options of every CPU neuron/layer kernel: cached, and numpy's error model. Under numba's default (Python's)
# model each float division checks its divisor and raises ZeroDivisionError, a branch per element that keeps LLVM
# from vectorising the loop: the arctan surrogate row ran at 0.58 ns per value on one core, 0.04 with this model
# (``benchmarks/results/speed2/session20_scripts/row_micro.py.txt``). A zero divisor gives inf or NaN, as in torch.
KERNEL_OPTIONS = {"cache": True, "error_model": "numpy"}


def _inverse(value: float) -> np.float32:
    """float32 of ``1/float32(value)``, as torch divides a float32 tensor by ``value``."""
    return ONE / np.float32(value)


# name -> its kernel constants (p1, p2) from its parameters (``surrogate_constants``)
_CONSTANTS = {
    "rectangular": lambda p: (_inverse(p["a"]), np.float32(p["a"] / 2)),
    "sigmoid": lambda p: (np.float32(p["alpha"]), ZERO),
    "fast_sigmoid": lambda p: (np.float32(p["k"]), ZERO),
    "arctan": lambda p: (np.float32(p["alpha"] / 2), np.float32(np.pi / 2 * p["alpha"])),
    "triangular": lambda p: (_inverse(p["a"]), _inverse(p["a"])),
    "piecewise_quadratic": lambda p: (np.float32(p["alpha"]), np.float32(p["alpha"])),
    "erf": lambda p: (np.float32(p["alpha"] / np.sqrt(np.pi)), np.float32(p["alpha"])),
    "straight_through": lambda p: (ONE, ZERO),
}


def surrogate_constants(name: str, params: dict[str, float]) -> tuple[int, np.float32, np.float32]:
    """``(code, p1, p2)`` of the kernels' surrogate derivative from a surrogate's name and parameters.

    rectangular: ``p1 = 1/a`` (float32 of ``1/float32(a)``, as torch divides), ``p2 = a/2``; sigmoid:
    ``p1 = alpha``; fast_sigmoid: ``p1 = k``; arctan: ``p1 = alpha/2``, ``p2 = pi/2 alpha``; the tent
    ``p1 max(0, 1 - p2 |u|)``: triangular ``p1 = p2 = 1/a``, piecewise_quadratic ``p1 = p2 = alpha``; erf
    ``p1 exp(-(p2 u)^2)``: ``p1 = alpha/sqrt(pi)``, ``p2 = alpha``; straight_through: ``1`` (``p1 = 1``).
    ``KeyError`` for a name without a kernel (a registered surrogate: ``fused.fused_supported`` is False).
    """
    p1, p2 = _CONSTANTS[name](params)
    return SURROGATE_CODES[name], p1, p2
