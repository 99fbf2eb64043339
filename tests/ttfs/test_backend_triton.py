"""The Triton TTFS backend (the CUDA path) against the numba and torch backends on the CPU: spike times, and
gradients through the exact backward. Compiled on a GPU where CUDA is available, else in Triton's interpreter
on CPU tensors (``triton_device``). Skipped where triton is missing (CI). TRITON_INTERPRET must be set before
triton compiles the kernels (before the first import of deepspike; ``triton_device`` sets it)."""

import math

import pytest
import torch

from triton_device import DEVICE, to_device
from ttfs_rounding import TIE_CASES, last_input_rounding_case

pytest.importorskip("triton")

from deepspike.core.errors import ConfigError  # noqa: E402
from deepspike.ttfs import spike_times, spike_times_conv2d  # noqa: E402
from deepspike.ttfs.kernels_numba import HAVE_NUMBA  # noqa: E402

REFERENCE = "numba" if HAVE_NUMBA else "torch"


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_equals_reference(kernel, dtype):
    g = torch.Generator().manual_seed(0)
    t = torch.rand(6, 70, generator=g, dtype=dtype) * 3
    t[t > 2.6] = math.inf  # silent inputs
    t[:, :5] = 1.0  # ties
    t[2] = math.inf  # a silent sample: only the bias can fire it
    w = torch.randn(40, 70, generator=g, dtype=dtype) * 0.2 + 0.05  # 40 outputs: two channel blocks
    b = torch.rand(40, generator=g, dtype=dtype) * 1.5
    ref = spike_times(t, w, b, kernel=kernel, backend=REFERENCE)
    got = spike_times(*to_device(t, w, b), kernel=kernel, backend="triton").cpu()
    assert 0.2 < torch.isfinite(ref).double().mean() < 1.0 and torch.isfinite(ref[2]).any()
    assert torch.equal(torch.isfinite(ref), torch.isfinite(got))
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(got, ref, rtol=tol, atol=tol)


def test_exp_reference_moves_for_late_inputs():
    """Inputs spread over 80 tau: without moving the reference exp((t - ref)/tau) would overflow float32."""
    t = torch.linspace(0.0, 80.0, 50).repeat(2, 1)
    w = torch.full((3, 50), 0.03)
    ref = spike_times(t, w, kernel="exp", backend=REFERENCE)
    got = spike_times(*to_device(t, w), kernel="exp", backend="triton").cpu()
    assert torch.isfinite(ref).all() and ref.min() > 30
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4)


def test_a_crossing_before_the_reference_moves_is_kept():
    """Two inputs at 0 fire at ln 6; an input 1,000 tau later moves the reference, which once scaled the sums to 0
    and fired at 1,000 (tests/ttfs/test_autograd.py has the same case for the CPU backends)."""
    t, w = torch.tensor([[0.0, 0.0, 1000.0]]), torch.tensor([[0.6, 0.6, 0.6]])
    got = spike_times(*to_device(t, w), kernel="exp", backend="triton").cpu()
    torch.testing.assert_close(got, torch.tensor([[math.log(6.0)]]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0)])
def test_conv_values_and_gradients_equal_reference(kernel, stride, padding):
    g = torch.Generator().manual_seed(1)
    t = torch.rand(3, 4, 7, 6, generator=g, dtype=torch.float64) * 2
    t[t > 1.8] = math.inf
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64) * 0.3 + 0.1
    b = torch.randn(5, generator=g, dtype=torch.float64) * 0.3
    upstream = None
    results = []
    for backend in (REFERENCE, "triton"):
        device = DEVICE if backend == "triton" else torch.device("cpu")
        leaves = [x.clone().to(device).requires_grad_() for x in (t, w, b)]
        out = spike_times_conv2d(*leaves, stride=stride, padding=padding, kernel=kernel, backend=backend)
        if upstream is None:
            upstream = torch.randn(out.shape, generator=g, dtype=torch.float64)
        (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * upstream.to(out.device)).sum().backward()
        results.append((out.detach().cpu(), [x.grad.cpu() for x in leaves]))
    (ref, ref_grads), (got, got_grads) = results
    assert torch.isfinite(ref).any() and torch.equal(torch.isfinite(ref), torch.isfinite(got))
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    for a, n in zip(ref_grads, got_grads):
        torch.testing.assert_close(n, a, rtol=1e-10, atol=1e-12)


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ConfigError, match="CUDA tensors"):
        spike_times(torch.zeros(1, 3), torch.ones(2, 3), backend="triton")


def test_empty_batch_and_half_precision():
    """An empty batch gives empty times and gradients; float16 times are computed in float32 (as on the CPU
    backends, ``tests/ttfs/test_autograd.py``) and come back as float16."""
    w = torch.rand(3, 5, device=DEVICE, requires_grad=True)
    t = torch.rand(0, 5, device=DEVICE, requires_grad=True)
    out = spike_times(t, w, backend="triton")
    out.sum().backward()
    assert out.shape == (0, 3) and t.grad.shape == (0, 5) and torch.equal(w.grad.cpu(), torch.zeros(3, 5))
    t16 = (torch.rand(4, 5) * 20).half()
    w16 = w.detach().cpu().half()
    got = spike_times(*to_device(t16, w16), backend="triton")
    ref = spike_times(t16.float(), w16.float(), backend=REFERENCE)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.cpu(), ref.half())


@pytest.mark.parametrize("kernel", ["relpsp", "exp"])
def test_a_spike_rounding_onto_its_last_input_is_kept_after_it(kernel):
    """As the CPU backends (tests/ttfs/test_gradients.py): the float32 spike that rounds onto its last input t1 is
    kept at the next float32, so the shared backward's mask t_i < t_out keeps input 1's gradient."""
    times, weights = last_input_rounding_case(kernel)
    t1 = torch.tensor(times[1])
    t, w = (torch.tensor([v], requires_grad=True) for v in (times, weights))
    ref = spike_times(t.detach(), w.detach(), kernel=kernel, backend="torch")
    dt, dw = to_device(t.detach(), w.detach())
    dt.requires_grad_()
    dw.requires_grad_()
    out = spike_times(dt, dw, kernel=kernel, backend="triton")
    out.sum().backward()
    assert out.item() == ref.item() == torch.nextafter(t1, torch.tensor(math.inf)).item()
    assert dt.grad[0, 1] > 0.4


@pytest.mark.parametrize(("kernel", "dtype", "times", "weights"), TIE_CASES)
def test_a_tie_group_is_checked_whole(kernel, dtype, times, weights):
    """As the CPU backends (tests/ttfs/test_closed_form.py): a neuron is checked for a crossing only after the
    whole group of equal input times, so a rounded crossing partway through a group fires nothing."""
    t, w = torch.tensor([times], dtype=dtype), torch.tensor([weights], dtype=dtype)
    assert spike_times(*to_device(t, w), kernel=kernel, backend="triton").item() == math.inf
    conv = spike_times_conv2d(*to_device(t.view(1, 1, 1, 3), w.view(1, 1, 1, 3)), None, padding=(0, 1),
                              kernel=kernel, backend="triton").cpu()
    torch.testing.assert_close(conv, spike_times_conv2d(t.view(1, 1, 1, 3), w.view(1, 1, 1, 3), None, padding=(0, 1),
                                                        kernel=kernel, backend="torch"), rtol=1e-6, atol=0)
