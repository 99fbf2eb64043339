"""Spike-time pooling: earliest-spike max pool and zhou2021's average pool."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.ttfs.layers import TTFSAvgPool2d, TTFSMaxPool2d
from deepspike.ttfs.pooling import avg_pool_times, max_pool_times

INF = math.inf


def test_max_pool_takes_earliest_spike_and_padding_never_wins():
    t = torch.tensor([[[[3.0, 1.0], [INF, 2.0]]]], requires_grad=True)
    out = max_pool_times(t, 2)
    assert out.item() == 1.0  # earliest spike (zhou2021's code would give the latest: a bug)
    out.sum().backward()
    assert t.grad.tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]
    padded = max_pool_times(torch.tensor([[[[5.0]]]]), 3, stride=1, padding=1)
    assert padded.item() == 5.0  # padding is +inf (no spike), not t = 0
    assert max_pool_times(torch.full((1, 1, 2, 2), INF), 2).item() == INF


def test_avg_pool_exp_is_log_sum_exp():
    # zhou2021: weights theta/(N-1), N = 4; fires after all 4 inputs at z = sum_i z_i:
    # t = ln(e^0 + e^1 + e^2 + e^3) = 3.440190 (tau = 1); with tau = 2: 2 ln(sum e^{t/2}).
    t = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], dtype=torch.float64)
    assert avg_pool_times(t, 2).item() == pytest.approx(3.4401896985611953, rel=1e-12)
    want = 2 * math.log(sum(math.exp(x / 2) for x in (0, 1, 2, 3)))
    assert avg_pool_times(t, 2, tau=2.0).item() == pytest.approx(want, rel=1e-12)
    t[0, 0, 0, 0] = INF
    assert avg_pool_times(t, 2).item() == INF  # one silent input silences the window


def test_avg_pool_relpsp_hand_computed():
    # weights w = 1/3 (theta = 1, N = 4). Inputs [0, 0, 0, 10]: the first three give slope 1,
    # V = t reaches 1 at t = 1 < 10 -> t_out = ((N-1) + sum_C t)/|C| = (3 + 0)/3 = 1.
    t = torch.tensor([[[[0.0, 0.0], [0.0, 10.0]]]], dtype=torch.float64)
    assert avg_pool_times(t, 2, kernel="relpsp").item() == pytest.approx(1.0, rel=1e-12)


def test_avg_pool_rejects_single_input_window():
    with pytest.raises(ConfigError, match="at least 2"):
        avg_pool_times(torch.zeros(1, 1, 2, 2), 1)


@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_gradient_equals_the_formula(channels_last):
    """The pooling Function (one negation, backward from the indices) equals autograd through -max_pool2d(-t)."""
    g = torch.Generator().manual_seed(2)
    t = torch.rand(3, 4, 7, 6, generator=g)
    t[t > 0.8] = math.inf
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    up = torch.randn(3, 4, 4, 4, generator=g)
    leaves = [t.clone().requires_grad_(), t.clone().requires_grad_()]
    outs = [max_pool_times(leaves[0], 2, padding=1), -torch.nn.functional.max_pool2d(-leaves[1], 2, 2, 1)]
    torch.testing.assert_close(outs[0], outs[1])
    for out in outs:
        (torch.where(torch.isfinite(out), out, torch.zeros_like(out)) * up).sum().backward()
    torch.testing.assert_close(leaves[0].grad, leaves[1].grad)
    assert leaves[0].grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [math.nan, -math.inf])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("k,s,p,n", [(2, 2, 0, 6), (3, 2, 1, 6), (2, 3, 0, 6), (2, 2, 0, 7), (3, 3, 1, 7)])
def test_max_pool_rejects_nan_and_negative_infinity_anywhere(bad, channels_last, k, s, p, n):
    # the scan runs on the pooled output when every input lies in a window: a bad value in any window position,
    # either layout, must still be caught (a stride past the kernel or a dropped last row/column skips inputs:
    # then the input is scanned)
    for where in [(0, 0, 0, 0), (1, 2, 3, 4), (1, 1, n - 1, n - 1), (0, 2, n - 1, 1)]:
        t = torch.rand(2, 3, n, n)
        t[where] = bad
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with pytest.raises(ConfigError, match="NaN or -inf"):
            max_pool_times(t, k, s, p)


@pytest.mark.parametrize("k,s,p,n,skipped", [(2, 3, 0, 5, 2), (3, 3, 1, 6, 5)])
def test_max_pool_scans_the_input_a_window_skips(k, s, p, n, skipped):
    # windows of k=2, s=3 on 5 inputs cover 0, 1, 3, 4 (the pooled output spans the axis, yet index 2 lies between
    # windows); k=3, s=3, p=1 on 6 inputs cover -1..4 (the last window ends at (n_out - 1) s - p + k = 5 < 6): a NaN
    # at the skipped index never reaches the output, so the input itself must be scanned
    t = torch.rand(1, 1, n, n)
    t[0, 0, skipped, skipped] = math.nan
    with pytest.raises(ConfigError, match="NaN or -inf"):
        max_pool_times(t, k, s, p)


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(kernel_size=2, stride=0), "kernel_size and stride must be >= 1"),  # the modules once read 0 as the default
    (dict(kernel_size=2, stride=-1), "kernel_size and stride must be >= 1"),
    (dict(kernel_size=5), r"window \(5, 5\) larger than the padded input \(4, 4\)"),  # once torch's RuntimeError
    (dict(kernel_size=2, padding=2), r"must be in \[0, kernel_size // 2\]"),
])
def test_a_pooling_geometry_out_of_range_is_one_line_in_functions_and_modules(pool, kwargs, message):
    t = torch.rand(1, 2, 4, 4)
    function, module = (max_pool_times, TTFSMaxPool2d) if pool == "max" else (avg_pool_times, TTFSAvgPool2d)
    with pytest.raises(ConfigError, match=message):
        function(t, **kwargs)
    with pytest.raises(ConfigError, match=message):
        module(**kwargs)(t)


def test_avg_pool_refuses_an_unknown_backend_with_either_kernel():
    for kernel in ("exp", "relpsp"):
        with pytest.raises(ConfigError, match="unknown TTFS backend 'zzz'"):
            avg_pool_times(torch.rand(1, 1, 4, 4), 2, kernel=kernel, backend="zzz")


def test_avg_pool_relpsp_weights_follow_the_times_device():
    """The fixed weights theta/(N-1) were made on the default device, not the times': CUDA times failed in the
    solver with a device mismatch (here: a default device other than the times', whose weights could not even
    be scanned)."""
    t = torch.tensor([[[[0.0, 0.0], [0.0, 10.0]]]], dtype=torch.float64)
    with torch.device("meta"):
        out = avg_pool_times(t, 2, kernel="relpsp", backend="torch")
    assert out.device.type == "cpu" and out.item() == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_avg_pool_relpsp_of_half_times_is_the_float32_result_rounded(dtype):
    """Half-precision times are computed in float32 (``deepspike.ttfs``), but the pooling weights theta/(N-1) were
    made in the times' dtype: 1/3 in bfloat16 is 0.33398, so a 2x2 window fired at mean t + 0.7485 instead of
    mean t + 0.75 (here up to one bfloat16 step, 0.25, from the float32 result rounded)."""
    g = torch.Generator().manual_seed(0)
    t = (torch.rand(2, 3, 8, 8, generator=g) * 5 + 50).to(dtype)
    out = avg_pool_times(t, 2, kernel="relpsp")
    assert out.dtype == dtype
    assert torch.equal(out, avg_pool_times(t.float(), 2, kernel="relpsp").to(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k", [2, 4])
def test_avg_pool_exp_of_half_times_is_the_float32_result_rounded(dtype, k):
    """The exp kernel's closed form ``tau logsumexp(t / tau)`` ran in the times' own dtype: 20-45% of the outputs (the
    data below) were one step off the float32 result rounded, which is what half-precision times get everywhere else
    (``deepspike.ttfs``); the gradient comes back in the times' dtype."""
    g = torch.Generator().manual_seed(0)
    t = (torch.rand(8, 3, 8, 8, generator=g) * 5).to(dtype).requires_grad_()
    out = avg_pool_times(t, k, tau=0.7)
    assert out.dtype == dtype
    assert torch.equal(out, avg_pool_times(t.detach().float(), k, tau=0.7).to(dtype))
    out.float().sum().backward()
    assert t.grad.dtype == dtype


@pytest.mark.parametrize("theta", [1e-300, 1e300])
def test_relpsp_avg_pool_theta_out_of_range_names_avg_pool_times(theta):
    """float32 times: theta 1e-300 was refused under spike_times_conv2d's name, 1e300 overflowed (RuntimeError)."""
    with pytest.raises(ConfigError) as e:
        avg_pool_times(torch.rand(1, 1, 4, 4), 2, kernel="relpsp", theta=theta)
    assert str(e.value).startswith(f"avg_pool_times: threshold theta = {theta!r} or its window weight theta/(N-1) "
                                   "with N = 4 is not a positive finite number in torch.float32")
    out = avg_pool_times(torch.rand(1, 1, 4, 4, dtype=torch.float64), 2, kernel="relpsp", theta=theta)
    assert out.shape == (1, 1, 2, 2)  # float64 holds both


def test_exp_avg_pool_with_a_different_window_per_axis_by_hand():
    # kernel (1, 2), stride (1, 2), padding (0, 1) on one row t = 0..4: padded [inf, 0, 1, 2, 3, 4, inf], windows
    # [inf, 0] (silent), [1, 2], [3, 4]: t_out = [inf, ln(e + e^2), ln(e^3 + e^4)] (the height axis keeps its 0 padding)
    t = torch.arange(5.0, dtype=torch.float64).reshape(1, 1, 1, 5)
    out = avg_pool_times(t, (1, 2), (1, 2), (0, 1))
    expected = [math.inf, math.log(math.e + math.e**2), math.log(math.e**3 + math.e**4)]
    assert out.shape == (1, 1, 1, 3) and out.flatten().tolist() == pytest.approx(expected, rel=1e-12)
