"""The Triton kernels of the fused neuron update (the CUDA path): against the numba kernels argument for
argument, and end to end against the reference loop. Compiled on a GPU where CUDA is available, else in
Triton's interpreter on CPU tensors (``triton_device``: where they run, and the tolerance on a GPU).

Skipped where triton is not installed (CI). TRITON_INTERPRET must be set before triton compiles the kernels,
i.e. before ``deepspike.neurons.fused_triton`` is first imported (``triton_device`` sets it).
"""

import itertools

import numpy as np
import pytest
import torch

from triton_device import DEVICE, EXACT, assert_same, to_device

pytest.importorskip("triton")
pytest.importorskip("numba")

from deepspike.neurons import NeuronParams, fused_triton, neuron_multistep  # noqa: E402
from deepspike.neurons import fused_kernels as numba_kernels  # noqa: E402
from deepspike.neurons.fused import FUSED_SURROGATES, fused_supported, poolable  # noqa: E402
from deepspike.neurons.fused_constants import surrogate_constants  # noqa: E402

NO_POOL = np.zeros(6, dtype=np.int64)
SURROGATE_ARGS = {"rectangular": {"a": 0.8}, "sigmoid": {"alpha": 3.0}, "fast_sigmoid": {"k": 5.0},
                  "arctan": {"alpha": 2.5}, "triangular": {"a": 0.9}, "piecewise_quadratic": {"alpha": 1.3},
                  "erf": {"alpha": 1.5}, "straight_through": {}}
T, N = 4, 2 * fused_triton.BLOCK + 37  # three programs, the last one partly masked


def _forward_both(x, v0, reset, store_h):
    """(s, v_T, h) of the Triton (on ``DEVICE``, copied back) and the numba forward kernel on the same inputs."""
    results = []
    for backend in ("triton", "numba"):
        v = v0.clone()
        s, h = torch.empty(T, N), torch.empty(T, N) if store_h else torch.empty(0, 0)
        if backend == "triton":
            xd, v, s, h = to_device(x, v, s, h)
            fused_triton.lif_forward(xd, v, s, h, np.float32(0.8), np.float32(0.5), reset, store_h, NO_POOL)
            s, v, h = s.cpu(), v.cpu(), h.cpu()
        else:
            args = (x, v, s, h, np.float32(0.8), np.float32(0.5), reset, store_h, NO_POOL)
            numba_kernels.lif_forward(*(a.numpy() if isinstance(a, torch.Tensor) else a for a in args))
        results.append((s, v, h))
    return results


@pytest.mark.parametrize(("reset", "const"), list(itertools.product((0, 1, 2), (False, True))))
def test_forward_kernel_equals_numba(reset, const):
    g = torch.Generator().manual_seed(reset * 2 + const)
    x = torch.randn(1 if const else T, N, generator=g)
    v0 = torch.rand(N, generator=g)
    (s_t, v_t, h_t), (s_n, v_n, h_n) = _forward_both(x, v0, reset, store_h=True)
    assert torch.equal(s_t, s_n)
    assert_same(h_t, h_n)
    assert_same(v_t, v_n)
    assert 0 < s_n.mean() < 1


BACKWARD = list(itertools.product((0, 1, 2), (False, True), FUSED_SURROGATES, (False, True), ("h", "recompute",
                                                                                              "summed")))


@pytest.mark.parametrize(("reset", "detach", "surrogate", "has_gh", "mode"), BACKWARD)
def test_backward_kernel_equals_numba(reset, detach, surrogate, has_gh, mode):
    g = torch.Generator().manual_seed(BACKWARD.index((reset, detach, surrogate, has_gh, mode)))
    x = torch.randn(1 if mode != "h" else T, N, generator=g)
    v0 = torch.rand(N, generator=g)
    h = torch.empty(T, N)
    numba_kernels.lif_forward(x.numpy(), v0.clone().numpy(), torch.empty(T, N).numpy(), h.numpy(),
                              np.float32(0.8), np.float32(0.5), reset, True, NO_POOL)
    gs, gh, gv0 = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g), torch.randn(N, generator=g)
    code, p1, p2 = surrogate_constants(surrogate, SURROGATE_ARGS[surrogate])
    outs = []
    for backend in ("triton", "numba"):
        gv = gv0.clone()
        gx = torch.zeros(1, N) if mode == "summed" else torch.empty(T, N)
        saved = torch.empty(0, N) if mode == "recompute" else h
        tensors = (saved, gs, gh, gv, gx, x, v0)
        if backend == "triton":
            saved, gs_d, gh_d, gv, gx, x_d, v0_d = to_device(*tensors)
            fused_triton.lif_backward(saved, gs_d, gh_d, has_gh, gv, gx, np.float32(0.9), np.float32(0.5), reset,
                                      detach, code, p1, p2, NO_POOL, x_d, v0_d, np.float32(0.8))
            gx, gv = gx.cpu(), gv.cpu()
        else:
            args = (saved, gs, gh, has_gh, gv, gx, np.float32(0.9), np.float32(0.5), reset, detach, code, p1, p2,
                    NO_POOL, x, v0, np.float32(0.8))
            numba_kernels.lif_backward(*(a.numpy() if isinstance(a, torch.Tensor) else a for a in args))
        outs.append((gx, gv))
    (gx_t, gv_t), (gx_n, gv_n) = outs
    torch.testing.assert_close(gx_t, gx_n, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gv_t, gv_n, rtol=1e-5, atol=1e-6)
    assert gx_n.abs().sum() > 0


@pytest.mark.parametrize(("reset", "recompute"), list(itertools.product((0, 1, 2), (False, True))))
def test_backward_kernel_reads_a_one_row_gradient_as_numba(reset, recompute):
    """A one-row ``gs`` (the stride-0 ``dL/ds`` of ``s.sum()``) is read at every step by both kernels, with a saved
    ``h`` or with ``h`` recomputed from ``x`` of T rows (``fused_low_precision``), and equals the expanded gradient."""
    g = torch.Generator().manual_seed(40 + reset * 2 + recompute)
    x, v0 = torch.randn(T, N, generator=g), torch.rand(N, generator=g)
    h = torch.empty(T, N)
    numba_kernels.lif_forward(x.numpy(), v0.clone().numpy(), torch.empty(T, N).numpy(), h.numpy(),
                              np.float32(0.8), np.float32(0.5), reset, True, NO_POOL)
    row, gv0 = torch.randn(1, N, generator=g), torch.randn(N, generator=g)
    code, p1, p2 = surrogate_constants("fast_sigmoid", SURROGATE_ARGS["fast_sigmoid"])
    outs = []
    for backend, gs in (("triton", row), ("numba", row), ("numba", row.expand(T, N).contiguous())):
        gv, gx = gv0.clone(), torch.empty(T, N)
        saved = torch.empty(0, N) if recompute else h
        rest = (np.float32(0.9), np.float32(0.5), reset, False, code, p1, p2, NO_POOL)
        if backend == "triton":
            saved_d, gs_d, gv, gx, x_d, v0_d = to_device(saved, gs, gv, gx, x, v0)
            fused_triton.lif_backward(saved_d, gs_d, gs_d, False, gv, gx, *rest, x_d, v0_d, np.float32(0.8))
            gx, gv = gx.cpu(), gv.cpu()
        else:
            args = (saved, gs, gs, False, gv, gx, *rest, x, v0, np.float32(0.8))
            numba_kernels.lif_backward(*(a.numpy() if isinstance(a, torch.Tensor) else a for a in args))
        outs.append((gx, gv))
    for gx, gv in outs[:2]:
        torch.testing.assert_close(gx, outs[2][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(gv, outs[2][1], rtol=1e-5, atol=1e-6)
    assert outs[2][0].abs().sum() > 0


def test_pooling_is_refused():
    x = torch.zeros(1, 8)
    with pytest.raises(ValueError, match="do not pool"):
        fused_triton.lif_forward(x, torch.zeros(8), torch.empty(1, 2), torch.empty(1, 8), 1.0, 1.0, 0, True,
                                 np.array([2, 2, 2, 1, 1, 0]))


@pytest.mark.parametrize("time_invariant", [False, True])
def test_fused_multistep_through_triton_equals_reference(monkeypatch, time_invariant):
    """``neuron_multistep`` with the Triton backend forced on CPU tensors: the fused autograd path (saved h,
    or recomputed h for a time-invariant input) against the reference loop, values and gradients; both on
    ``DEVICE``."""
    monkeypatch.setenv("DEEPSPIKE_FUSED_BACKEND", "triton")
    params = NeuronParams(decay=0.7, threshold=0.6, reset="subtract", surrogate="sigmoid",
                          surrogate_args={"alpha": 3.0})
    torch.manual_seed(3)
    step = torch.randn(3, 4, 6, 6)
    x_base = (step if time_invariant else torch.randn(5, 3, 4, 6, 6)).to(DEVICE)
    v0_base = torch.rand(3, 4, 6, 6).to(DEVICE)
    assert fused_supported(x_base, params) and not poolable(torch.zeros(5, 3, 4, 6, 6), (2, 2))
    results = []
    for fused in (True, False):
        leaf = x_base.detach().clone().requires_grad_()
        x = leaf.unsqueeze(0).expand(5, *leaf.shape) if time_invariant else leaf
        v0 = v0_base.clone().requires_grad_()
        s, v = neuron_multistep(x, params, v0=v0, fused=fused)
        (s * torch.linspace(-1, 1, s.numel(), device=DEVICE).view_as(s)).sum().add(v.sum()).backward()
        results.append((s.detach(), v.detach(), leaf.grad, v0.grad))
    (s_f, v_f, gx_f, gv_f), (s_r, v_r, gx_r, gv_r) = results
    assert torch.equal(s_f, s_r) and 0 < s_r.mean() < 1
    assert_same(v_f, v_r.cpu())
    torch.testing.assert_close(gx_f, gx_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv_f, gv_r, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reset", [0, 1, 2])
def test_forward_kernel_propagates_nan_as_numba(reset):
    """The NaN policy (``neurons.dynamics``) in the Triton kernel: a NaN current gives NaN spikes from that step
    on, as the numba kernel (bit for bit in the interpreter; ``triton_device.EXACT``)."""
    x = torch.rand(T, N, generator=torch.Generator().manual_seed(9))
    x[1, 5] = float("nan")
    (s_t, v_t, h_t), (s_n, v_n, h_n) = _forward_both(x, torch.zeros(N), reset, store_h=True)
    assert torch.isnan(s_n[1:, 5]).all() and torch.isnan(s_n).sum() == T - 1
    torch.testing.assert_close(s_t, s_n, rtol=0, atol=0, equal_nan=True)
    for a, b in ((v_t, v_n), (h_t, h_n)):
        assert_same(a, b, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input_through_triton_equals_numba_chunks(monkeypatch, dtype):
    """A float16 / bfloat16 input with the Triton backend (``neurons.fused_low_precision``: the kernels read and
    write the input's dtype, float32 state) against the numba path's float32 chunks on the CPU: the same spikes,
    ``v_T`` and gradients (one rounding to ``dtype`` of float32 values), for a dense ``dL/ds`` and for the
    stride-0 one of ``s.sum()``, and with ``inplace`` (``dL/dx`` over the input)."""
    from deepspike.neurons.fused_low_precision import low_precision_supported

    params = NeuronParams(decay=0.9, threshold=0.8, reset="subtract", surrogate="fast_sigmoid",
                          surrogate_args={"k": 2.0})
    torch.manual_seed(5)
    x_base = (torch.randn(6, 3, 4, 5, 5) * 0.7 + 0.2).to(dtype)
    v0_base = torch.rand(3, 4, 5, 5).to(dtype)
    weights = torch.randn(x_base.shape).to(dtype)
    results = []
    for backend in ("triton", "numba"):
        monkeypatch.setenv("DEEPSPIKE_FUSED_BACKEND", backend)
        dev = DEVICE if backend == "triton" else torch.device("cpu")
        x, v0 = x_base.to(dev).clone().requires_grad_(), v0_base.to(dev).clone().requires_grad_()
        assert low_precision_supported(x, params, v0)
        s, v = neuron_multistep(x, params, v0=v0)
        assert s.dtype == dtype and v.dtype == dtype
        (s * weights.to(dev)).sum().add(v.sum()).backward()
        leaf = x_base.to(dev).clone().requires_grad_()
        neuron_multistep(leaf * 1, params, inplace=True)[0].sum().backward()
        results.append([t.detach().cpu().float() for t in (s, v, x.grad, v0.grad, leaf.grad)])
    assert torch.equal(results[0][0], results[1][0]) and 0 < results[1][0].mean() < 1  # the spikes
    # Triton's interpreter truncates float32 -> bfloat16 (whatever the rounding asked for; torch and compiled Triton
    # round to nearest even), and a GPU may contract k v + x into an FMA: there, one unit in the last place
    exact = EXACT and dtype == torch.float16
    for got, ref in zip(results[0][1:], results[1][1:]):
        torch.testing.assert_close(got, ref, rtol=0 if exact else torch.finfo(dtype).eps, atol=0 if exact else 1e-6)
