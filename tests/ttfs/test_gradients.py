"""Exact gradients of the closed-form TTFS layers: hand formulas, gradcheck, backend agreement."""

import math

import pytest
import torch

from deepspike.ttfs import backend_native, spike_times, spike_times_conv2d
from deepspike.ttfs.kernels_numba import HAVE_NUMBA
from ttfs_rounding import last_input_rounding_case

BACKENDS = ["torch"] + (["numba"] if HAVE_NUMBA else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_relpsp_gradients_match_zhang_eq_13_14(backend):
    # t = [0, 1], w = [0.5, 2]: C = {0, 1}, sum_C w = 2.5, t_out = 1.2 (see test_temporal_closed_form).
    # eq. 13: dt/dw_i = (t_i - t_out)/2.5 = [-0.48, -0.08]; eq. 14: dt/dt_i = w_i/2.5 = [0.2, 0.8].
    t = torch.tensor([[0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    spike_times(t, w, kernel="relpsp", backend=backend).sum().backward()
    torch.testing.assert_close(w.grad, torch.tensor([[-0.48, -0.08]], dtype=torch.float64))
    torch.testing.assert_close(t.grad, torch.tensor([[0.2, 0.8]], dtype=torch.float64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_exp_gradients_hand_computed(backend):
    # one input at 0 with w = 2, bias b = 0.5 at t = 0 as well: t_out = ln((w + b)/(w + b - 1)) = ln(2.5/1.5);
    # dt/dw = dt/db = 1/(w+b) - 1/(w+b-1) = 0.4 - 2/3; the input at 0 == the bias spike time.
    # A later silent input and an input after the spike (t = 5) get zero gradient.
    t = torch.tensor([[0.0, math.inf, 5.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[2.0, 3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    out = spike_times(t, w, b, backend=backend)
    assert out.item() == pytest.approx(math.log(2.5 / 1.5), rel=1e-12)
    out.sum().backward()
    g = 0.4 - 2.0 / 3.0
    torch.testing.assert_close(w.grad, torch.tensor([[g, 0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(b.grad, torch.tensor([g], dtype=torch.float64))
    # dt/dt_0 = w_0 e^{(0 - t_out)} / (sum_C w - 1) = 2 * 0.6 / 1.5 = 0.8
    torch.testing.assert_close(t.grad, torch.tensor([[0.8, 0.0, 0.0]], dtype=torch.float64))


def _dense_inputs(seed, kernel):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(2, 5, generator=g, dtype=torch.float64) * 2
    t[0, 3] = math.inf
    w = torch.rand(4, 5, generator=g, dtype=torch.float64) * 0.6 - 0.05
    b = torch.rand(4, generator=g, dtype=torch.float64) * 0.3
    return t.requires_grad_(), w.requires_grad_(), b.requires_grad_()


def _finite_sum(fn):
    def f(*args):
        out = fn(*args)
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out))

    return f


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_gradcheck_dense(kernel, backend):
    t, w, b = _dense_inputs(5, kernel)
    out = spike_times(t, w, b, kernel=kernel, backend=backend)
    assert torch.isfinite(out).double().mean() > 0.5
    fn = _finite_sum(lambda t, w, b: spike_times(t, w, b, kernel=kernel, backend=backend))
    assert torch.autograd.gradcheck(fn, (t, w, b), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0)])
def test_gradcheck_conv(kernel, backend, stride, padding):
    g = torch.Generator().manual_seed(7)
    t = (torch.rand(1, 2, 4, 4, generator=g, dtype=torch.float64) * 2).requires_grad_()
    w = (torch.rand(2, 2, 3, 3, generator=g, dtype=torch.float64) * 0.3 - 0.03).requires_grad_()
    b = (torch.rand(2, generator=g, dtype=torch.float64) * 0.2).requires_grad_()

    def layer(t, w, b):
        return spike_times_conv2d(t, w, b, stride, padding, kernel=kernel, backend=backend)

    assert torch.isfinite(layer(t, w, b)).double().mean() > 0.5
    assert torch.autograd.gradcheck(_finite_sum(layer), (t, w, b), eps=1e-7, atol=1e-6)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_numba_backward_equals_torch_backward(kernel):
    g = torch.Generator().manual_seed(11)
    t = torch.rand(3, 4, 6, 6, generator=g, dtype=torch.float64) * 2
    t[t > 1.8] = math.inf
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64) * 0.2 + 0.08
    b = torch.randn(5, generator=g, dtype=torch.float64) * 0.2
    upstream = torch.randn(3, 5, 6, 6, generator=g, dtype=torch.float64)
    grads = []
    for backend in ("torch", "numba"):
        leaves = [x.clone().requires_grad_() for x in (t, w, b)]
        out = spike_times_conv2d(*leaves, padding=1, kernel=kernel, backend=backend)
        (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * upstream).sum().backward()
        grads.append([x.grad for x in leaves])
    for a, n in zip(*grads):
        torch.testing.assert_close(a, n, rtol=1e-10, atol=1e-12)
    assert grads[0][1].abs().sum() > 0



@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("stride,padding", [(2, 1), (1, 0)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_numba_backward_layouts_and_silent_samples(kernel, stride, padding, channels_last):
    """Channels-last or contiguous inputs, strides, a silent sample whose outputs fire from the bias alone,
    an input that needs no gradient, float32: numba's fused backward equals the torch reference."""
    g = torch.Generator().manual_seed(5)
    t = torch.rand(4, 3, 7, 6, generator=g) * 2
    t[t > 1.7] = math.inf
    t[2] = math.inf  # no input spike at all: only the bias (weight > theta for some outputs) can fire
    w = torch.randn(6, 3, 3, 3, generator=g) * 0.2 + 0.1
    b = torch.rand(6, generator=g) * 2.5
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    ho = (7 + 2 * padding - 3) // stride + 1
    wo = (6 + 2 * padding - 3) // stride + 1
    upstream = torch.randn(4, 6, ho, wo, generator=g)
    for need_t in (True, False):
        grads = []
        for backend in ("torch", "numba"):
            leaves = [t.clone().requires_grad_(need_t), w.clone().requires_grad_(), b.clone().requires_grad_()]
            out = spike_times_conv2d(*leaves, stride=stride, padding=padding, kernel=kernel, backend=backend)
            assert torch.isfinite(out[2]).any()
            (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * upstream).sum().backward()
            grads.append([x.grad for x in leaves])
        for ref, got in zip(*grads):
            if ref is None:
                assert got is None
            else:
                torch.testing.assert_close(got, ref, rtol=2e-4, atol=2e-5)
        assert grads[1][2].abs().sum() > 0

def test_no_spike_outputs_pass_no_gradient():
    t = torch.tensor([[0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[0.5, 0.5], [2.0, 2.0]], dtype=torch.float64, requires_grad=True)  # row 0: sum = theta
    out = spike_times(t, w)
    assert math.isinf(out[0, 0].item()) and math.isfinite(out[0, 1].item())
    out[0, 1].backward()
    assert torch.all(w.grad[0] == 0) and torch.any(w.grad[1] != 0)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
def test_numba_backend_leaves_torch_thread_count_alone():
    # numba's OpenMP pool shares the runtime with torch: the TTFS kernels and the sort must not change the
    # thread count a user set (OMP_NUM_THREADS=1 became 2 on a 2-core machine before they ran via run_numba_kernel)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        t = (torch.rand(4, 3, 6, 6) * 2).requires_grad_()
        w = (torch.randn(5, 3, 3, 3) * 0.2 + 0.1).requires_grad_()
        out = spike_times_conv2d(t, w, padding=1, backend="numba")
        torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


NATIVE = ["native"] if backend_native.library() is not None else []


@pytest.mark.parametrize("kernel", ["relpsp", "exp"])
@pytest.mark.parametrize("backend", BACKENDS + NATIVE)
def test_a_spike_rounding_onto_its_last_input_keeps_that_inputs_gradient(kernel, backend):
    """The float32 spike time is kept strictly after its last causal input t1 (the next float32): it rounded onto t1,
    and backward's causal mask t_i < t_out then dropped input 1 (dt/dt1 = 0 for w1/D = 0.5 relpsp, 0.909 exp)."""
    times, weights = last_input_rounding_case(kernel)
    ref_t = torch.tensor([times], dtype=torch.float64, requires_grad=True)
    ref_w = torch.tensor([weights], dtype=torch.float32).double().requires_grad_()
    ref = spike_times(ref_t, ref_w, kernel=kernel, backend="torch")
    ref.sum().backward()
    t1 = torch.tensor(times[1])
    assert ref.float().item() == t1.item()  # the exact spike rounds onto t1 in float32
    t = torch.tensor([times], requires_grad=True)
    w = torch.tensor([weights], requires_grad=True)
    out = spike_times(t, w, kernel=kernel, backend=backend)
    out.sum().backward()
    assert out.item() == torch.nextafter(t1, torch.tensor(math.inf)).item()
    assert t.grad[0, 1] > 0.4
    torch.testing.assert_close(t.grad.double(), ref_t.grad, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(w.grad.double(), ref_w.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel", ["relpsp", "exp"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_float64_spike_rounding_onto_its_last_input_keeps_that_inputs_gradient(kernel, backend):
    """As in float32: the float64 spike time that rounds onto its last causal input t1 is kept at the next float64,
    so input 1 keeps its gradient, by hand dt/dt1 = w1/a = 1/(2 - 2^-53) (relpsp), w1 z1 / sum w z = 20/22 (exp,
    z1 = e^t1 = 2); numba's float64 forward kept no last-input times and gave t1 itself, dt/dt1 = 0."""
    times, weights = last_input_rounding_case(kernel, torch.float64)
    t = torch.tensor([times], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([weights], dtype=torch.float64, requires_grad=True)
    out = spike_times(t, w, kernel=kernel, backend=backend)
    out.sum().backward()
    t1 = torch.tensor(times[1], dtype=torch.float64)
    assert out.item() == torch.nextafter(t1, torch.tensor(math.inf, dtype=torch.float64)).item()
    assert t.grad[0, 1].item() == pytest.approx(0.5 if kernel == "relpsp" else 10 / 11, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exp_gradients_with_tau_2_hand_computed(backend):
    # as test_exp_gradients_hand_computed with tau = 2: 2.5 (1 - e^{-t/2}) = 1 at t_out = 2 ln(2.5/1.5), e = 0.6;
    # dt/dw = dt/db = tau (e - 1) / D = 2 (0.6 - 1) / 1.5, dt/dt_0 = w e / D = 2 * 0.6 / 1.5 (tau cancels)
    t = torch.tensor([[0.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[2.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    out = spike_times(t, w, b, tau=2.0, backend=backend)
    assert out.item() == pytest.approx(2 * math.log(2.5 / 1.5), rel=1e-12)
    out.sum().backward()
    assert w.grad.item() == pytest.approx(-0.8 / 1.5, rel=1e-12) and b.grad.item() == pytest.approx(-0.8 / 1.5)
    assert t.grad.item() == pytest.approx(0.8, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_input_arriving_at_the_spike_time_gets_no_gradient(backend):
    # relpsp, t = [0, 1], w = [1, 5]: V(1) = 1 * (1 - 0) = theta, so the spike is at 1 with C = {0}; the input at 1
    # adds nothing to V(1): dt/dt = [w_0 / 1, 0] = [1, 0], dt/dw = [(0 - 1) / 1, 0] = [-1, 0]
    t = torch.tensor([[0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[1.0, 5.0]], dtype=torch.float64, requires_grad=True)
    out = spike_times(t, w, kernel="relpsp", backend=backend)
    assert out.item() == 1.0
    out.sum().backward()
    assert t.grad.tolist() == [[1.0, 0.0]] and w.grad.tolist() == [[-1.0, 0.0]]
