"""Closed-form TTFS spike times: hand-computed cases, backend agreement, chunking, errors."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.ttfs import backend_native, spike_times, spike_times_conv2d
from deepspike.ttfs.kernels_numba import HAVE_NUMBA
from deepspike.ttfs.pooling import avg_pool_times
from deepspike.ttfs.simulate import neuron_first_spike
from ttfs_rounding import TIE_CASES

INF = math.inf
BACKENDS = ["torch"] + (["numba"] if HAVE_NUMBA else [])


def st(t, w, bias=None, **kw):
    t = torch.tensor([t], dtype=torch.float64)
    w = torch.tensor([w], dtype=torch.float64)
    b = None if bias is None else torch.tensor(bias, dtype=torch.float64)
    return spike_times(t, w, b, **kw).item()


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_two_inputs(backend):
    e = math.e
    # exp, t = [0, 1], w = [0.5, 2]: prefix {0} has sum w = 0.5 <= theta -> no crossing;
    # prefix {0, 1}: z = (0.5*1 + 2*e) / (2.5 - 1) = 3.9577 -> t = ln(3.9577) = 1.375665 >= 1.
    assert st([0, 1], [0.5, 2], backend=backend) == pytest.approx(math.log((0.5 + 2 * e) / 1.5), rel=1e-12)
    assert st([0, 1], [0.5, 2], backend=backend) == pytest.approx(1.375665348929181, rel=1e-12)
    # exp, w = [2, 5]: prefix {0}: z = 2/(2-1) = 2 -> t = ln 2 = 0.693 < 1, fires before the 2nd input.
    assert st([0, 1], [2, 5], backend=backend) == pytest.approx(math.log(2), rel=1e-12)
    # relpsp, w = [0.5, 2]: prefix {0}: t = 1/0.5 = 2 > 1 invalid; prefix {0,1}: (1 + 0 + 2*1)/2.5 = 1.2.
    assert st([0, 1], [0.5, 2], kernel="relpsp", backend=backend) == pytest.approx(1.2, rel=1e-12)
    # relpsp, w = [2, 5]: prefix {0}: t = 1/2 = 0.5 <= 1 valid.
    assert st([0, 1], [2, 5], kernel="relpsp", backend=backend) == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_negative_weights_first_crossing(backend):
    # exp, w = [3, -10]: crosses at ln(3/2) = 0.405 before the inhibitory spike at t = 1 (V then falls).
    assert st([0, 1], [3, -10], backend=backend) == pytest.approx(math.log(1.5), rel=1e-12)
    # exp, w = [-1, 3]: prefix {0} has negative sum; prefix {0,1}: z = (-1 + 3e)/(2 - 1) -> t = 1.96779.
    assert st([0, 1], [-1, 3], backend=backend) == pytest.approx(1.9677898174401003, rel=1e-12)
    # relpsp, w = [2, -10] at [0, 1]: V = 2t reaches 1 at 0.5, before the inhibition.
    assert st([0, 1], [2, -10], kernel="relpsp", backend=backend) == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_silent_bias_and_no_spike(backend):
    # tie: both inputs at t = 1 enter together: z = 1.2 e / (1.2 - 1) = 6e -> t = 1 + ln 6.
    assert st([1, 1], [0.6, 0.6], backend=backend) == pytest.approx(2.791759469228055, rel=1e-12)
    # relpsp tie at t = 2 of +5 and -5 after 0.4 at t = 0: V = 0.4 t throughout -> 2.5 (not {0,+5}: 2.04)
    assert st([0, 2, 2], [0.4, 5, -5], kernel="relpsp", backend=backend) == pytest.approx(2.5, rel=1e-12)
    # a silent input never enters C, whatever its weight
    assert st([INF, 0], [100, 2], backend=backend) == pytest.approx(math.log(2), rel=1e-12)
    # bias = input spike at t = 0 with weight 1.5: alone z = 3 > e^1 invalid; with the t = 1 input
    # (w = 0.5): z = (1.5 + 0.5 e)/(2 - 1) -> t = 1.050521.
    assert st([1], [0.5], bias=[1.5], backend=backend) == pytest.approx(1.0505212000687338, rel=1e-12)
    assert st([1, 0], [0.5, 1.5], backend=backend) == pytest.approx(1.0505212000687338, rel=1e-12)
    # no spike: sum w = theta exactly (exp) / sums never positive (relpsp) / all silent
    assert st([0, 1], [0.5, 0.5], backend=backend) == INF
    assert st([0, 1], [-1, 0.5], kernel="relpsp", backend=backend) == INF
    assert st([INF, INF], [5, 5], backend=backend) == INF


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_theta_tau_scaling(kernel):
    # V(t) = sum w K((t - t_i)/tau) = theta  <=>  sum (w/theta) K(t/tau - t_i/tau) = 1 (exp: K = 1 - e^-x);
    # relpsp: V = sum w (t - t_i): t_out(t, w, theta) = t_out(t, w/theta, 1).
    g = torch.Generator().manual_seed(3)
    t = torch.rand(8, 10, generator=g, dtype=torch.float64) * 3
    w = torch.rand(6, 10, generator=g, dtype=torch.float64) * 0.6 - 0.1
    if kernel == "exp":
        a = spike_times(t, w, kernel=kernel, theta=0.5, tau=2.0)
        b = 2.0 * spike_times(t / 2.0, w / 0.5, kernel=kernel)
    else:
        a = spike_times(t, w, kernel=kernel, theta=0.5)
        b = spike_times(t, w / 0.5, kernel=kernel)
    assert torch.isfinite(a).any()
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def random_case(seed, dtype, b=16, n=40, m=24, ties=True):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(b, n, generator=g, dtype=dtype) * 3
    t[t > 2.5] = INF  # silent inputs
    if ties:
        t[:, 1] = t[:, 2]
        t[:, 5] = torch.round(t[:, 5])
    w = torch.randn(m, n, generator=g, dtype=dtype) * 0.3 + 0.08
    bias = torch.randn(m, generator=g, dtype=dtype) * 0.5
    return t, w, bias


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_numba_equals_torch_dense(kernel, dtype):
    t, w, bias = random_case(0, dtype)
    a = spike_times(t, w, bias, kernel=kernel, backend="torch")
    n = spike_times(t, w, bias, kernel=kernel, backend="numba")
    assert 0.2 < torch.isfinite(a).double().mean() < 1.0
    assert torch.equal(torch.isfinite(a), torch.isfinite(n))
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(a, n, rtol=tol, atol=tol)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0), (2, 2)])
def test_numba_equals_torch_conv(kernel, stride, padding):
    g = torch.Generator().manual_seed(1)
    t = torch.rand(3, 4, 9, 8, generator=g, dtype=torch.float64) * 2
    t[t > 1.8] = INF
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64) * 0.3 + 0.1
    bias = torch.randn(5, generator=g, dtype=torch.float64) * 0.3
    a = spike_times_conv2d(t, w, bias, stride, padding, kernel=kernel, backend="torch")
    n = spike_times_conv2d(t, w, bias, stride, padding, kernel=kernel, backend="numba")
    assert a.shape == (3, 5, (9 + 2 * padding - 3) // stride + 1, (8 + 2 * padding - 3) // stride + 1)
    assert torch.isfinite(a).any()
    assert torch.equal(torch.isfinite(a), torch.isfinite(n))
    torch.testing.assert_close(a, n, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("stride", [1, 2])
def test_numba_equals_torch_conv_with_tie_groups(kernel, dtype, stride):
    """Times on 4 levels: tie groups of about 40 inputs whose receptive fields overlap, one of them with the bias at
    0 (the numba sweep checks a group member only at the positions no earlier member of the group reached)."""
    g = torch.Generator().manual_seed(2)
    t = (torch.rand(4, 3, 8, 9, generator=g, dtype=dtype) * 4).floor() * 0.5
    t[t > 1.4] = INF
    w = torch.randn(6, 3, 3, 3, generator=g, dtype=dtype) * 0.4 + 0.1
    bias = torch.randn(6, generator=g, dtype=dtype) * 0.5
    a = spike_times_conv2d(t, w, bias, stride, 1, kernel=kernel, backend="torch")
    n = spike_times_conv2d(t, w, bias, stride, 1, kernel=kernel, backend="numba")
    assert 0.2 < torch.isfinite(a).double().mean() < 1.0
    assert torch.equal(torch.isfinite(a), torch.isfinite(n))
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(a, n, rtol=tol, atol=tol)


def test_conv_padding_is_no_spike():
    # 1x1 input, 3x3 kernel, padding 1: only the centre tap sees a spike; zero padding must NOT act as
    # spikes at t = 0 (those would fire the neuron at ln(9*1/(9-1)) with all-ones weights).
    t = torch.tensor([[[[0.5]]]], dtype=torch.float64)
    w = torch.ones(1, 1, 3, 3, dtype=torch.float64) * 2
    out = spike_times_conv2d(t, w, padding=1)
    assert out.item() == pytest.approx(0.5 + math.log(2), rel=1e-12)  # z = 2 e^0.5 / (2 - 1)


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_chunking_gives_identical_results(kernel):
    t, w, bias = random_case(2, torch.float64, b=9, n=17, m=11)
    ref = spike_times(t, w, bias, kernel=kernel, backend="torch")
    for chunk in (1, 7, 18, 200):
        assert torch.equal(ref, spike_times(t, w, bias, kernel=kernel, backend="torch", chunk_elements=chunk))
    ti = t[:, :16].reshape(9, 1, 4, 4)
    wi = w[:, :16].reshape(11, 1, 4, 4)[:, :, :3, :3].contiguous()
    ref = spike_times_conv2d(ti, wi, bias, padding=1, kernel=kernel, backend="torch")
    for chunk in (1, 50, 1000):
        out = spike_times_conv2d(
            ti, wi, bias, padding=1, kernel=kernel, backend="torch", chunk_elements=chunk
        )
        assert torch.equal(ref, out)


def test_user_errors():
    t = torch.zeros(2, 3)
    w = torch.ones(4, 3)
    with pytest.raises(ConfigError, match="unknown TTFS kernel"):
        spike_times(t, w, kernel="alpha")
    with pytest.raises(ConfigError, match="theta"):
        spike_times(t, w, theta=0.0)
    with pytest.raises(ConfigError, match="does not match"):
        spike_times(t, torch.ones(4, 5))
    with pytest.raises(ConfigError, match="NaN"):
        spike_times(torch.full((2, 3), math.nan), w)
    with pytest.raises(ConfigError, match="bias"):
        spike_times(t, w, bias=torch.ones(3))
    with pytest.raises(ConfigError, match="backend"):
        spike_times(t, w, backend="cuda")
    with pytest.raises(ConfigError, match="larger than"):
        spike_times_conv2d(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 3, 3))


@pytest.mark.parametrize("chunk", [math.inf, math.nan, 0, -5, "100", 2.5])
def test_a_chunk_bound_that_is_not_a_whole_number_is_refused(chunk):
    """inf and NaN passed the old ``chunk_elements < 1`` check and raised OverflowError / ValueError tracebacks from
    int(); a string a TypeError; 2.5 was silently truncated to 2; avg_pool_times with kernel exp ignored it."""
    t, w = torch.rand(2, 3), torch.rand(4, 3)
    with pytest.raises(ConfigError, match="spike_times: chunk_elements must be a whole number >= 1"):
        spike_times(t, w, chunk_elements=chunk)
    with pytest.raises(ConfigError, match="spike_times_conv2d: chunk_elements must be a whole number >= 1"):
        spike_times_conv2d(t.reshape(1, 1, 2, 3), w.reshape(2, 1, 2, 3), chunk_elements=chunk)
    with pytest.raises(ConfigError, match="avg_pool_times: chunk_elements must be a whole number >= 1"):
        avg_pool_times(t.reshape(1, 1, 2, 3), 2, chunk_elements=chunk)


def test_exp_log_domain_sums_equal_the_direct_sums(monkeypatch):
    """The torch solver's log-domain path (rows spanning too many tau for exp(t/tau)) on ordinary rows, forced by
    a zero span limit: the same spike times as the direct sums, with negative weights, ties, silent inputs, a bias
    and outputs that never fire."""
    import deepspike.ttfs.causal_set as cs

    g = torch.Generator().manual_seed(2)
    t = torch.rand(40, 12, generator=g, dtype=torch.float64) * 4
    t[t > 3.5] = INF
    t[:, 3] = t[:, 4]  # ties
    w = torch.randn(9, 12, generator=g, dtype=torch.float64) * 0.8 + 0.15
    b = torch.randn(9, generator=g, dtype=torch.float64)
    direct = spike_times(t, w, b, kernel="exp", backend="torch")
    monkeypatch.setitem(cs.EXP_SPAN_LIMIT, torch.float64, 0.0)
    logged = spike_times(t, w, b, kernel="exp", backend="torch")
    assert torch.isfinite(direct).any() and torch.isinf(direct).any()
    assert torch.equal(torch.isfinite(logged), torch.isfinite(direct))
    fin = torch.isfinite(direct)
    torch.testing.assert_close(logged[fin], direct[fin], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,span", [(torch.float32, 300.0), (torch.float64, 2000.0)])
def test_exp_rows_spanning_hundreds_of_tau(dtype, span):
    """exp(t/tau) overflows past ~85 tau (float32) or ~700 tau (float64): the torch solver must still give the
    spike times, here against a hand-computed one and the event-wise backends (numba, native), which
    re-reference their exponentials as they go."""
    # hand: t = [0, S, S + 1], w = [0.5, 2, 0.3]: the first input alone never reaches theta = 1; with the second,
    # exp((t - S)/tau) = (0.5 exp(-S) + 2)/(2.5 - 1) -> t = S + ln(2/1.5) (the e^-S term is below rounding)
    t = torch.tensor([[0.0, span, span + 1.0]], dtype=dtype)
    w = torch.tensor([[0.5, 2.0, 0.3]], dtype=dtype)
    assert spike_times(t, w, kernel="exp", backend="torch").item() == pytest.approx(span + math.log(2 / 1.5),
                                                                                   rel=1e-6)
    g = torch.Generator().manual_seed(4)
    t = torch.rand(30, 16, generator=g, dtype=torch.float64) * span
    t[t > 0.9 * span] = INF
    w = torch.rand(7, 16, generator=g, dtype=torch.float64) * 0.6 - 0.1
    ref = spike_times(t.to(dtype), w.to(dtype), kernel="exp", backend="torch")
    assert torch.isfinite(ref).float().mean() > 0.3
    others = ["numba"] if HAVE_NUMBA else []
    if dtype == torch.float32 and backend_native.library() is not None:
        others.append("native")
    for backend in others:
        out = spike_times(t.to(dtype), w.to(dtype), kernel="exp", backend=backend)
        assert torch.equal(torch.isfinite(out), torch.isfinite(ref)), backend
        fin = torch.isfinite(ref)
        torch.testing.assert_close(out[fin], ref[fin], rtol=1e-5, atol=1e-3, msg=backend)


@pytest.mark.parametrize("backend", ["torch", "numba", "native"])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64, torch.bool])
def test_a_bias_that_is_not_a_real_floating_tensor_is_refused(backend, dtype):
    """The weights had to be floating but the bias did not: a complex bias raised NotImplementedError ("ge_cpu" not
    implemented for 'ComplexFloat') on the torch backend and lost its imaginary part silently on numba and native;
    integer and boolean biases were taken as numbers. All are refused now, on every backend, as the weights are."""
    t, w = torch.rand(2, 3), torch.rand(4, 3)
    with pytest.raises(ConfigError, match="spike_times: bias must be a floating tensor"):
        spike_times(t, w, torch.ones(4, dtype=dtype), backend=backend)
    with pytest.raises(ConfigError, match="spike_times_conv2d: bias must be a floating tensor"):
        spike_times_conv2d(t.reshape(2, 3, 1, 1), w.reshape(4, 3, 1, 1), torch.ones(4, dtype=dtype), backend=backend)


@pytest.mark.parametrize("weight", [[[1.0, 2.0, 3.0]], None, 2.0])
def test_a_weight_that_is_not_a_tensor_is_refused_in_one_line(weight):
    """A list, None or a number as the weights raised AttributeError ('list' object has no attribute 'shape') from
    the message of the very check that refused them."""
    with pytest.raises(ConfigError, match=f"spike_times: weight must be a floating tensor .M, N., got "
                                          f"{type(weight).__name__}"):
        spike_times(torch.rand(2, 3), weight)
    with pytest.raises(ConfigError, match="spike_times_conv2d: weight must be a floating tensor"):
        spike_times_conv2d(torch.rand(1, 3, 2, 2), weight)


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
@pytest.mark.parametrize("scale, span", [(1e20, 70.0), (1e37, 30.0), (2e38, 20.0)])
def test_huge_weights_and_theta_give_the_times_of_the_scaled_down_neuron(kernel, scale, span):
    """Weights and theta both ``scale`` times larger fire at the same times (V = theta <=> V/s = theta/s), here from the
    event simulator on the unscaled neuron. In float32 the solvers' sums ``sum w exp((t - ref)/tau)`` and ``sum w``
    overflowed: every backend gave wrong times (e.g. 78.6 for a spike at 92.5, inf for one at 49.4), relpsp at 2e38
    inf or NaN; the weights, bias and theta are now scaled down by a power of two first. The weight gradient is
    ``1/scale`` of the unscaled neuron's."""
    g = torch.Generator().manual_seed(5)
    t = torch.rand(6, 5, generator=g, dtype=torch.float64) * span
    w = torch.rand(4, 5, generator=g, dtype=torch.float64) * 0.9
    b = torch.rand(4, generator=g, dtype=torch.float64) * 0.2
    ref = torch.tensor([[neuron_first_spike(torch.cat([t[r], torch.zeros(1, dtype=torch.float64)]).numpy(),
                                            torch.cat([w[j], b[j:j + 1]]).numpy(), kernel, 1.0, 1.0)
                         for j in range(4)] for r in range(6)])
    assert torch.isfinite(ref).sum() > 12
    w64 = w.clone().requires_grad_()
    spike_times(t, w64, b, kernel, 1.0, 1.0, "torch").nan_to_num(posinf=0.0).sum().backward()
    for backend in ["torch"] + (["numba"] if HAVE_NUMBA else []) + (["native"] if backend_native.library() else []):
        wb = (w * scale).float().requires_grad_()
        out = spike_times(t.float(), wb, (b * scale).float(), kernel, scale, 1.0, backend)
        assert torch.equal(torch.isinf(out), torch.isinf(ref)), backend
        torch.testing.assert_close(out[torch.isfinite(ref)].double(), ref[torch.isfinite(ref)], rtol=1e-5, atol=1e-4)
        out.nan_to_num(posinf=0.0).sum().backward()
        atol = 1e-3 * float(w64.grad.abs().max())
        torch.testing.assert_close(wb.grad.double() * scale, w64.grad, rtol=1e-3, atol=atol)


# A tie group whose first member, added, rounds a x - s past theta x although V(t_g) < theta: the numba and native
# sweeps checked before each member and fired at t_g partway through the group (slope of part of it); the whole
# group's weight is negative, so the neuron never fires (event simulator, and by hand: relpsp V(t) = w0 t - 2 (t - 1)
# <= w0 < 1 for t >= 1; exp: V tends to a = w0 - 1 < 1 and falls after t_g, with V(t_g) = w0 (1 - e^-t_g) < 1).


@pytest.mark.parametrize("backend", ["torch", "numba", "native"])
@pytest.mark.parametrize("kernel, dtype, times, weights", TIE_CASES)
def test_a_tie_group_is_checked_whole_on_every_backend(backend, kernel, dtype, times, weights):
    if (backend == "numba" and not HAVE_NUMBA) or (backend == "native" and (
            backend_native.library() is None or dtype != torch.float32)):
        pytest.skip("backend unavailable for this dtype")
    t, w = torch.tensor([times], dtype=dtype), torch.tensor([weights], dtype=dtype)
    assert neuron_first_spike(t[0].double().numpy(), w[0].double().numpy(), kernel) == INF
    assert spike_times(t, w, kernel=kernel, backend=backend).item() == INF  # before: t_g on numba and native
    # the same neuron as the middle position of a 1 x 3 convolution (padding 1): its neighbours see part of the group
    conv = spike_times_conv2d(t.view(1, 1, 1, 3), w.view(1, 1, 1, 3), None, padding=(0, 1), kernel=kernel,
                              backend=backend)
    assert conv[0, 0, 0, 1].item() == INF
    torch.testing.assert_close(conv, spike_times_conv2d(t.view(1, 1, 1, 3), w.view(1, 1, 1, 3), None, padding=(0, 1),
                                                        kernel=kernel, backend="torch"), rtol=1e-6, atol=0)
