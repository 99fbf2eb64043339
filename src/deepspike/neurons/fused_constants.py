"""The codes and float32 constants shared by the fused neuron kernels (numba ``fused_kernels`` on CPU, Triton
``fused_triton`` on CUDA); free of numba and triton so either backend can load without the other."""

from __future__ import annotations

import numpy as np

SURROGATE_CODES = {"rectangular": 0, "sigmoid": 1, "fast_sigmoid": 2, "arctan": 3}
RESET_CODES = {"zero": 0, "subtract": 1, "none": 2}

ONE = np.float32(1.0)
ZERO = np.float32(0.0)

# numba options of every CPU neuron/layer kernel: cached, and numpy's error model. Under numba's default (Python's)
# model each float division checks its divisor and raises ZeroDivisionError, a branch per element that keeps LLVM
# from vectorising the loop: the arctan surrogate row ran at 0.58 ns per value on one core, 0.04 with this model
# (``benchmarks/results/speed2/session20_scripts/row_micro.py.txt``). A zero divisor gives inf or NaN, as in torch.
KERNEL_OPTIONS = {"cache": True, "error_model": "numpy"}


def surrogate_constants(name: str, params: dict[str, float]) -> tuple[int, np.float32, np.float32]:
    """``(code, p1, p2)`` of the kernels' surrogate derivative from a surrogate's name and parameters.

    rectangular: ``p1 = 1/a`` (float32 of ``1/float32(a)``, as torch divides), ``p2 = a/2``; sigmoid:
    ``p1 = alpha``; fast_sigmoid: ``p1 = k``; arctan: ``p1 = alpha/2``, ``p2 = pi/2 alpha``.
    """
    if name == "rectangular":
        a = params["a"]
        return 0, ONE / np.float32(a), np.float32(a / 2)
    if name == "sigmoid":
        return 1, np.float32(params["alpha"]), ZERO
    if name == "fast_sigmoid":
        return 2, np.float32(params["k"]), ZERO
    alpha = params["alpha"]
    return 3, np.float32(alpha / 2), np.float32(np.pi / 2 * alpha)
