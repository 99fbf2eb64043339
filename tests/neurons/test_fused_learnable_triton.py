"""The Triton kernels of the learnable-decay/threshold update: against the numba kernels argument for argument,
and end to end against the reference loop. Compiled on a GPU where CUDA is available, else in Triton's
interpreter on CPU tensors (``make test-triton``; ``triton_device``).

Skipped where triton is not installed (CI). TRITON_INTERPRET must be set before triton compiles the kernels
(``triton_device`` sets it).
"""

import itertools

import pytest
import torch

from triton_device import DEVICE, to_device

pytest.importorskip("triton")
pytest.importorskip("numba")

from deepspike.neurons import NeuronParams  # noqa: E402
from deepspike.neurons import fused_learnable_kernels as numba_kernels  # noqa: E402
from deepspike.neurons import fused_learnable_triton as triton_kernels  # noqa: E402
from deepspike.neurons.fused_constants import surrogate_constants  # noqa: E402
from deepspike.neurons.learnable_dynamics import learnable_multistep  # noqa: E402
from deepspike.neurons.surrogate import BUILT_IN  # noqa: E402

T, N = 4, 2 * triton_kernels.BLOCK + 37  # three programs, the last one partly masked


def _both(name, args):
    """Run kernel ``name`` of both backends on copies of ``args`` (Triton's on ``DEVICE``); returns both argument
    lists after the call, on the CPU."""
    out = []
    for backend in (triton_kernels, numba_kernels):
        copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        if backend is triton_kernels:
            copies = [to_device(a)[0] if isinstance(a, torch.Tensor) else a for a in copies]
            getattr(backend, name)(*copies)
            copies = [a.cpu() if isinstance(a, torch.Tensor) else a for a in copies]
        else:
            getattr(backend, name)(*(a.numpy() if isinstance(a, torch.Tensor) else a for a in copies))
        out.append(copies)
    return out


@pytest.mark.parametrize(("reset", "detach", "decay_input", "const"),
                         list(itertools.product((0, 1, 2), (False, True), (False, True), (False, True))))
def test_kernels_equal_numba(reset, detach, decay_input, const):
    g = torch.Generator().manual_seed(reset * 8 + detach * 4 + decay_input * 2 + const)
    x = torch.randn(1 if const else T, N, generator=g) * 1.5
    v0, k, th = torch.randn(N, generator=g), torch.rand(N, generator=g), torch.rand(N, generator=g) + 0.5
    fwd_t, fwd_n = _both("learnable_forward", [x, v0, torch.empty(T, N), k, th, reset, decay_input])
    assert torch.equal(fwd_t[2], fwd_n[2])  # spikes
    torch.testing.assert_close(fwd_t[1], fwd_n[1])  # v_T
    code, p1, p2 = surrogate_constants("sigmoid", {"alpha": 3.0})
    gs = torch.randn(T, N, generator=g)
    args = [x, v0, gs, torch.randn(N, generator=g), torch.empty(T, N), torch.zeros(N), torch.zeros(N), k, th,
            reset, detach, decay_input, code, p1, p2]
    bwd_t, bwd_n = _both("learnable_backward", args)
    for i in (3, 4, 5, 6):  # dL/dv0, dL/dx, dL/dk, dL/dth
        torch.testing.assert_close(bwd_t[i], bwd_n[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("surrogate", "reset"), list(itertools.product(BUILT_IN, (0, 1))))
def test_every_surrogate_backward_equals_numba(surrogate, reset):
    """Triton's ``_surrogate`` (``fused_triton``) against numba's ``_row_surrogate`` for every code, default
    constants, through the learnable backward kernels."""
    g = torch.Generator().manual_seed(100 + BUILT_IN.index(surrogate) * 2 + reset)
    x = torch.randn(T, N, generator=g) * 1.5
    v0, k, th = torch.randn(N, generator=g), torch.rand(N, generator=g), torch.rand(N, generator=g) + 0.5
    code, p1, p2 = surrogate_constants(surrogate, NeuronParams(surrogate=surrogate).spike_fn.params)
    args = [x, v0, torch.randn(T, N, generator=g), torch.randn(N, generator=g), torch.empty(T, N), torch.zeros(N),
            torch.zeros(N), k, th, reset, False, True, code, p1, p2]
    bwd_t, bwd_n = _both("learnable_backward", args)
    for i in (3, 4, 5, 6):  # dL/dv0, dL/dx, dL/dk, dL/dth
        torch.testing.assert_close(bwd_t[i], bwd_n[i], rtol=1e-5, atol=1e-5)
    assert bwd_n[4].abs().sum() > 0


@pytest.mark.parametrize("per", ["layer", "channel"])
def test_end_to_end_against_reference(per, monkeypatch):
    monkeypatch.setenv("DEEPSPIKE_FUSED_BACKEND", "triton")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(T, 2, 3, 4, 4, generator=g).to(DEVICE).requires_grad_()
    shape = () if per == "layer" else (3, 1, 1)
    k = (torch.rand(shape, generator=g) * 0.8 + 0.1).to(DEVICE).requires_grad_()
    th = (torch.rand(shape, generator=g) + 0.5).to(DEVICE).requires_grad_()
    params = NeuronParams(reset="subtract", surrogate="arctan")
    grads = []
    for fused in (True, False):
        s, v = learnable_multistep(x, k, th, params, decay_input=True, fused=fused)
        grads.append((s, torch.autograd.grad(s.sum() + v.sum(), (x, k, th))))
    assert torch.equal(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
