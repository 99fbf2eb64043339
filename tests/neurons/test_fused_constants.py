"""``fused_constants.KERNEL_OPTIONS``: every numba kernel of the package (the TTFS ones through their own flags)
compiles with numpy's error model, under which the surrogate rows' divisions vectorise (under Python's model they
stay scalar), and ``reverse_step_rows``, which now stages ``h - th`` in ``v_prev`` so that its surrogate is not
computed in place, gives the hand-computed rows."""

import importlib
import re

import numpy as np
import pytest
import torch

from deepspike.neurons.fused_constants import KERNEL_OPTIONS, SURROGATE_CODES, surrogate_constants
from deepspike.neurons.surrogate import BUILT_IN, get_surrogate

nb = pytest.importorskip("numba")
from numba_kernels import kernel_modules, own_kernels  # noqa: E402 (tests/numba_kernels.py)


@pytest.mark.parametrize("name", kernel_modules())
def test_every_kernel_uses_the_shared_options(name):
    module = importlib.import_module(name)
    kernels = own_kernels(module)
    assert kernels, f"no numba kernels found in {name}"
    for kernel in kernels:
        assert kernel.targetoptions.get("error_model") == "numpy", kernel.py_func.__name__
        assert kernel._cache is not None and type(kernel._cache).__name__ == "FunctionCache", kernel.py_func.__name__


@pytest.mark.parametrize("surrogate, args", [("arctan", {"alpha": 2.0}), ("fast_sigmoid", {"k": 2.0})])
def test_surrogate_divisions_vectorise_only_under_the_numpy_error_model(surrogate, args):
    from deepspike.neurons.fused_kernels import _row_surrogate

    code, p1, p2 = surrogate_constants(surrogate, args)
    h, out = np.linspace(-2, 2, 64, dtype=np.float32), np.empty(64, dtype=np.float32)
    counts = {}
    for model in ("python", "numpy"):
        options = {**{k: v for k, v in KERNEL_OPTIONS.items() if k != "cache"}, "error_model": model}
        fresh = nb.njit(**options)(_row_surrogate.py_func)  # a fresh compile, so its LLVM IR can be read
        fresh(h, np.float32(1.0), code, p1, p2, out)
        ir = "".join(fresh.inspect_llvm().values())
        counts[model] = len(re.findall(r"fdiv[^\n]*<\d+ x float>", ir))
    assert KERNEL_OPTIONS["error_model"] == "numpy"
    assert counts["numpy"] > 0 and counts["python"] == 0, counts


@pytest.mark.parametrize("reset", [0, 1, 2])
def test_reverse_step_rows_matches_hand_computed_rows(reset):
    from deepspike.neurons.fused_learnable_kernels import reverse_step_rows

    rng = np.random.default_rng(0)
    steps, width = 3, 37
    block_h = (rng.standard_normal((steps, width)) * 1.5).astype(np.float32)
    th = (1.0 + 0.1 * rng.standard_normal(width)).astype(np.float32)
    v0 = rng.standard_normal(width).astype(np.float32)
    code, p1, p2 = surrogate_constants("arctan", {"alpha": 2.0})
    for t in range(steps):
        v_prev, sg = np.full(width, np.nan, np.float32), np.full(width, np.nan, np.float32)
        h_row = reverse_step_rows(block_h, t, v0, th, reset, code, p1, p2, v_prev, sg)
        np.testing.assert_array_equal(h_row, block_h[t])
        u = (block_h[t] - th).astype(np.float32)
        np.testing.assert_array_equal(sg, p1 / (np.float32(1) + (p2 * u) * (p2 * u)))
        if t == 0:
            np.testing.assert_array_equal(v_prev, v0)
            continue
        h = block_h[t - 1]
        spike = (h - th >= 0).astype(np.float32)
        expect = {0: h * (1 - spike), 1: h - th * spike, 2: h}[reset]
        np.testing.assert_array_equal(v_prev, expect)


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("params", [{}, "other"])
def test_row_surrogate_equals_the_torch_derivative(name, params):
    """``_row_surrogate`` with ``surrogate_constants`` gives ``Surrogate.derivative`` (float32, a grid through the
    threshold and a NaN), for the default and for other constants."""
    from deepspike.neurons.fused_kernels import _row_surrogate

    other = {"rectangular": {"a": 0.6}, "sigmoid": {"alpha": 2.5}, "fast_sigmoid": {"k": 7.0}, "arctan": {"alpha": 3.0},
             "triangular": {"a": 0.7}, "piecewise_quadratic": {"alpha": 2.5}, "erf": {"alpha": 1.3},
             "straight_through": {}}
    surrogate = get_surrogate(name, **(other[name] if params == "other" else {}))
    code, p1, p2 = surrogate_constants(name, surrogate.params)
    assert code == SURROGATE_CODES[name]
    h = np.append(np.linspace(-2.5, 3.5, 601, dtype=np.float32), np.float32(np.nan))
    out = np.empty_like(h)
    _row_surrogate(h, np.float32(0.5), code, p1, p2, out)
    expected = surrogate.derivative(torch.from_numpy(h) - 0.5).numpy()
    np.testing.assert_allclose(out, expected, rtol=2e-6, atol=1e-7)
