"""Encoders: statistics with fixed seeds, exact values, determinism, views; TTFS times by hand."""

import math

import numpy as np
import pytest
import torch

from deepspike import coding
from deepspike.coding import (
    direct,
    first_spike_time,
    latency_spike_train,
    rate_bipolar,
    rate_poisson,
    ttfs_latency,
)
from deepspike.coding.encoder import InputEncoder
from deepspike.core.errors import ConfigError

P = torch.tensor([[0.0, 0.1, 0.25, 0.5, 0.9, 1.0]], dtype=torch.float64)  # [B=1, 6]


def test_poisson_rate_converges_to_p():
    T = 20_000
    s = rate_poisson(P, T, generator=1234)
    assert s.shape == (T, 1, 6) and s.dtype == P.dtype
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(dim=0)
    # Binomial: std of the mean = sqrt(p (1 - p) / T) <= 0.0036; allow 5 std (p = 0 and 1 are exact).
    tol = 5 * torch.sqrt(P * (1 - P) / T)
    assert ((rate - P).abs() <= tol).all()
    assert rate[0, 0] == 0 and rate[0, -1] == 1


def test_poisson_deterministic_for_seed_and_generator():
    a = rate_poisson(P, 50, generator=7)
    assert torch.equal(a, rate_poisson(P, 50, generator=7))
    assert not torch.equal(a, rate_poisson(P, 50, generator=8))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(rate_poisson(P, 50, generator=g1), rate_poisson(P, 50, generator=g2))


def test_poisson_rejects_out_of_range():
    with pytest.raises(ConfigError, match=r"needs intensities in \[0, 1\]; got values in \[-0.5, 1\]"):
        rate_poisson(torch.tensor([-0.5, 1.0]), 4)
    with pytest.raises(ConfigError, match="T=0"):
        rate_poisson(P, 0)


def test_bipolar_signs_and_rates():
    x = torch.tensor([[-1.0, -0.3, 0.0, 0.3, 0.8, 2.0]], dtype=torch.float64)
    T = 20_000
    s = rate_bipolar(x, T, generator=5)
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0}
    # every spike carries the sign of its input; zeros never fire
    assert ((s * torch.sign(x)) >= 0).all() and (s[:, 0, 2] == 0).all()
    rate = s.abs().mean(dim=0)
    p = x.abs().clamp(max=1)  # |x| >= 1 fires every step
    assert ((rate - p).abs() <= 5 * torch.sqrt(p * (1 - p) / T)).all()
    assert torch.equal(s, rate_bipolar(x, T, generator=5))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_intensities_fire_at_their_own_rate(dtype):
    # torch's bfloat16/float16 uniforms lie on a coarse, rounded grid: U < 0.001 held 2.9 times too often in bfloat16
    x = torch.tensor([0.001, 0.02, 0.3, 0.75], dtype=dtype).repeat(1000, 1)  # [B=1000, 4]
    p = x[0].double()  # the intensities as stored
    T = 1000
    tol = 5 * torch.sqrt(p * (1 - p) / (T * 1000))  # binomial sd of the mean over T * B draws
    poisson = rate_poisson(x, T, generator=11)
    bipolar = rate_bipolar(-x, T, generator=12)
    assert poisson.dtype == dtype and bipolar.dtype == dtype
    assert ((poisson.double().mean(dim=(0, 1)) - p).abs() <= tol).all()
    assert ((bipolar.double().mean(dim=(0, 1)) + p).abs() <= tol).all()


def test_direct_is_a_view():
    x = torch.rand(2, 3, 4)
    d = direct(x, 5)
    assert d.shape == (5, 2, 3, 4) and d.stride(0) == 0 and d.data_ptr() == x.data_ptr()
    assert torch.equal(d[3], x)


@pytest.mark.parametrize("x", [[0.5, 1.0], np.ones((2, 3), dtype=np.float32)])
def test_direct_of_no_tensor_is_one_line(x):
    """Once ``AttributeError: 'list' object has no attribute 'unsqueeze'``."""
    with pytest.raises(ConfigError, match=f"^direct needs a tensor \\[B, ...\\]; got {type(x).__name__}$"):
        direct(x, 4)


def test_steps_accept_integer_like():
    assert rate_poisson(P, torch.tensor(3)).shape == (3, 1, 6)
    with pytest.raises(ConfigError, match="T=2.5"):
        direct(P, 2.5)


def test_ttfs_values_by_hand():
    p = torch.tensor([0.0, 0.25, 1.0])
    # alpha = 2: "1-p": 2*(1-0)=2, 2*0.75=1.5, 0; "p": 0, 0.5, 2.
    assert ttfs_latency(p, alpha=2.0).tolist() == [2.0, 1.5, 0.0]
    assert ttfs_latency(p, alpha=2.0, mode="p").tolist() == [0.0, 0.5, 2.0]
    assert ttfs_latency(p, alpha=2.0, silent_zero=True).tolist() == [math.inf, 1.5, 0.0]
    assert ttfs_latency(p, alpha=2.0, mode="p", silent_zero=True).tolist() == [math.inf, 0.5, 2.0]


def test_ttfs_jitter_statistics_and_clamp():
    p = torch.full((50_000,), 0.5, dtype=torch.float64)
    t = ttfs_latency(p, alpha=4.0, jitter_sigma=0.1, generator=0)  # base time 2.0, far from the clamp
    # mean of 50k N(0, 0.01) draws: std 0.1/sqrt(5e4) = 4.5e-4; sample std within a few percent.
    assert t.mean().item() == pytest.approx(2.0, abs=5 * 0.1 / math.sqrt(5e4))
    assert t.std().item() == pytest.approx(0.1, rel=0.03)
    assert torch.equal(t, ttfs_latency(p, alpha=4.0, jitter_sigma=0.1, generator=0))
    early = ttfs_latency(torch.ones(1000), jitter_sigma=1.0, generator=1)  # base time 0: half would be < 0
    assert (early >= 0).all() and (early == 0).sum() > 300
    silent = ttfs_latency(torch.zeros(4), jitter_sigma=1.0, generator=1, silent_zero=True)
    assert torch.isinf(silent).all()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"mode": "linear"}, "unknown ttfs mode 'linear'; valid: 1-p, p"),
        ({"alpha": 0.0}, "alpha=0.0 must be"),
        ({"jitter_sigma": -1.0}, "jitter sigma=-1.0 must be a finite number >= 0"),
        ({"jitter_sigma": float("inf")}, "jitter sigma=inf must be a finite number >= 0"),
    ],
)
def test_ttfs_validation(kw, message):
    with pytest.raises(ConfigError, match=message):
        ttfs_latency(torch.tensor([0.5]), **kw)
    with pytest.raises(ConfigError, match="intensities in"):
        ttfs_latency(torch.tensor([1.5]))


@pytest.mark.parametrize("dt", [0.0, -1.0, math.nan, math.inf])
def test_latency_spike_train_refuses_a_step_that_is_not_finite_and_positive(dt):
    with pytest.raises(ConfigError, match=r"^time step dt=.* must be a finite number > 0$"):
        latency_spike_train(torch.tensor([0.5]), T=4, dt=dt)  # dt = inf put every finite time at step 0


def test_latency_spike_train_by_hand():
    # dt = 1, T = 5: 0 -> step 0; 1.5 -> 1; 2.0 -> 2; inf -> none; 4.99 -> 4; 5.0 = T*dt -> outside, none.
    times = torch.tensor([[0.0, 1.5, 2.0, math.inf, 4.99, 5.0]])
    s = latency_spike_train(times, T=5)
    assert s.shape == (5, 1, 6)
    expected = torch.zeros(5, 1, 6)
    for col, step in [(0, 0), (1, 1), (2, 2), (4, 4)]:
        expected[step, 0, col] = 1
    assert torch.equal(s, expected)
    # dt = 0.5: 1.5 -> step 3, 2.0 -> step 4, 4.99 -> step 9 >= T -> none
    s = latency_spike_train(times, T=5, dt=0.5)
    assert s[:, 0, :].argmax(0).tolist()[:3] == [0, 3, 4] and s[:, 0, 3:].sum() == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_latency_spike_train_of_half_precision_times_fires_once_at_floor(dtype):
    # bfloat16 step numbers 257, 259, ... rounded onto their neighbours: t = 256 spiked at steps 256 and 257
    times = torch.tensor([3.0, 256.0, 300.0, 2048.0, 2050.0, math.inf], dtype=dtype)
    s = latency_spike_train(times, T=2100)
    assert s.dtype == dtype
    assert s.sum(0).tolist() == [1, 1, 1, 1, 1, 0]
    assert s[:, :5].argmax(0).tolist() == [int(t) for t in times[:5].tolist()]  # step floor(t), as stored


def test_latency_round_trip():
    times = ttfs_latency(torch.rand(3, 7, generator=torch.Generator().manual_seed(2)), alpha=9.0)
    back = first_spike_time(latency_spike_train(times, T=20, dt=0.5), dt=0.5)  # window 10 > 9
    torch.testing.assert_close(back, torch.floor(times / 0.5) * 0.5)
    with pytest.raises(ConfigError, match="must be >= 0"):
        latency_spike_train(torch.tensor([-1.0]), T=3)


def test_nan_input_is_refused_by_the_range_checks():
    """The encoders that check their input's range (one min/max pass) refuse NaN there rather than turning it
    into a silent input (``1[U < NaN] = 0``, ``floor(NaN)`` never a step)."""
    x = P.clone()
    x[0, 2] = math.nan
    with pytest.raises(ConfigError, match=r"rate_poisson needs intensities in \[0, 1\]; got NaN"):
        rate_poisson(x, 4)
    with pytest.raises(ConfigError, match=r"ttfs_latency needs intensities in \[0, 1\]; got NaN"):
        ttfs_latency(x)
    with pytest.raises(ConfigError, match="spike times must be >= 0; got minimum nan"):
        latency_spike_train(x, 4)


@pytest.mark.parametrize("x", [torch.ones(2, 3, dtype=torch.long), torch.ones(2, dtype=torch.bool), np.ones(3)])
@pytest.mark.parametrize("encoder", ["rate_poisson", "rate_bipolar"])
def test_encoders_refuse_what_is_not_a_floating_point_tensor(x, encoder):
    """Once torch's NotImplementedError ("check_uniform_bounds" not implemented for 'Long') or a TypeError."""
    with pytest.raises(ConfigError, match=f"{encoder} needs a floating-point tensor"):
        getattr(coding, encoder)(x, 4)


@pytest.mark.parametrize("dtype, T", [(torch.float32, 200), (torch.float64, 200), (torch.float16, 200),
                                      (torch.bfloat16, 150)])  # bfloat16 holds 16.2 and 16.3 as one 16.25
@pytest.mark.parametrize("dt", [0.1, 0.3, 0.7, 1e-3, 0.01, 1 / 3, 1.0])
def test_spike_trains_survive_first_spike_time_and_back(dt, dtype, T):
    """``first_spike_time`` is the inverse of ``latency_spike_train``: neuron ``b`` firing once at step ``b`` comes
    back at step ``b``. Before: ``floor(t / dt)`` put 3 * 0.1 (0.30000000000000004 / 0.1 = 2.9999999999999996, and
    alike) one step early: 10 of 200 neurons in float64 at dt = 0.1, 8 in float32 at dt = 0.3, 81 in float16."""
    s = torch.eye(T, dtype=dtype).unsqueeze(-1)  # [T, B = T, K = 1]
    assert torch.equal(latency_spike_train(first_spike_time(s, dt), T, dt), s)


def test_latency_spike_train_of_times_on_and_off_the_step_edges():
    # dt = 0.1 in float64: 3 * 0.1 = 0.30000000000000004 starts step 3; the float just below it, 0.3 (exactly
    # 0.29999999999999998890 < 3 * 0.1000000000000000055511), still belongs to step 2, as does 0.2999999999999999
    times = torch.tensor([0.1 * 3, 0.3, 0.2999999999999999, 0.1 * 4], dtype=torch.float64)
    assert latency_spike_train(times, T=5, dt=0.1).argmax(0).tolist() == [3, 2, 2, 4]
    # whole-number int64 times are floored alike: 2 / 0.7 = 2.86 -> step 2, 3 / 0.7 = 4.29 -> step 4; 3 / 0.5 = 6 = T
    assert latency_spike_train(torch.tensor([2, 3]), T=6, dt=0.7).argmax(0).tolist() == [2, 4]
    assert latency_spike_train(torch.tensor([2, 3]), T=6, dt=0.5).sum(0).tolist() == [1, 0]


def test_bipolar_input_encoder_with_scale_two_is_lee2020s_mnist_poisson_generator():
    """lee2020's MNIST code draws ``((|input| / 2) > rand) * sign(input)`` each step from the [0, 1] pixels; the
    encoder with ``scale=2`` draws the same spikes from the same uniforms (before: no scale, twice the rate)."""
    x = torch.tensor([[-1.0, -0.6, -0.1, 0.0, 0.3, 0.9, 1.0, 1.8]], dtype=torch.float64)
    torch.manual_seed(7)
    s = InputEncoder("bipolar", 2.0)(x, 50)
    torch.manual_seed(7)
    rand = torch.rand((50, *x.shape), dtype=torch.float64)
    expected = ((x.abs() / 2) > rand).double() * torch.sign(x)  # the code's loop, all 50 steps at once
    assert torch.equal(s, expected)
    assert InputEncoder("bipolar").scale == 1.0 and "scale=2" in repr(InputEncoder("bipolar", 2.0))


@pytest.mark.parametrize(("kind", "scale"), [("bipolar", 0.0), ("bipolar", -2.0), ("bipolar", float("nan")),
                                             ("bipolar", 1e39), ("poisson", 2.0), ("direct", 0.5)])
def test_an_input_scale_that_is_no_positive_float32_or_not_for_bipolar_is_a_one_line_config_error(kind, scale):
    with pytest.raises(ConfigError, match=r"^bad value .* for encoder scale: [^\n]*$"):
        InputEncoder(kind, scale)


def test_ttfs_half_precision_times_are_float32():
    # float16 p: alpha (1 - p) past 65504 overflowed to +inf ("no spike"); by hand 1e5 * (1 - 0) = 1e5,
    # 1e5 * (1 - 0.5) = 5e4, 0. bfloat16 p = 0.3 is stored as 0.30078125: 1000 * 0.69921875 = 699.21875 (was 700).
    p16 = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float16)
    t = ttfs_latency(p16, alpha=1e5)
    assert t.dtype == torch.float32 and t.tolist() == [1e5, 5e4, 0.0]
    assert ttfs_latency(p16, alpha=1e5, mode="p").tolist() == [0.0, 5e4, 1e5]
    assert ttfs_latency(torch.tensor([0.3], dtype=torch.bfloat16), alpha=1000.0).tolist() == [699.21875]
    assert ttfs_latency(torch.tensor([0.5], dtype=torch.float64)).dtype == torch.float64


def test_bipolar_encoder_with_a_scale_divides_half_precision_input_in_float32():
    """``|x| / c`` of bfloat16 ``x`` was a bfloat16 quotient (2^-9 relative): 36 of 160,000 spikes differed from the
    same draws on the float32 ``x``. Reference: the comparison in float64 on the uniforms the encoder draws."""
    x = (torch.rand(20_000, generator=torch.Generator().manual_seed(3)) * 2 - 1).bfloat16()
    torch.manual_seed(11)
    s = InputEncoder("bipolar", 3.0)(x, 8)
    torch.manual_seed(11)
    rand = torch.rand((8, *x.shape), dtype=torch.float32).double()  # the float32 draws of a bfloat16 x
    expected = ((x.double().abs() / 3.0) > rand).double() * torch.sign(x.double())
    assert s.dtype == torch.bfloat16 and torch.equal(s.double(), expected)
    with pytest.raises(ConfigError, match="rate_bipolar needs a floating-point tensor; got torch.int64"):
        InputEncoder("bipolar", 2.0)(torch.ones(2, 3, dtype=torch.int64), 4)
