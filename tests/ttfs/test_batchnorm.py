"""Time-domain batch-norm (zhou2021 eq. 6): the formula, running statistics, folding for inference."""

import copy
import math
import warnings

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.ttfs.batchnorm import TTFSBatchNorm, TTFSDelayBias, fold_batchnorm
from deepspike.ttfs.simulate import neuron_first_spike


def test_training_output_matches_hand_computation():
    # one channel, z = e^t over the spiking entries {0, ln 2, ln 3} -> mean 2, biased var 2/3
    t = torch.tensor([[[[0.0, math.log(2.0)], [math.log(3.0), math.inf]]]])
    bn = TTFSBatchNorm(1, eps=0.0)
    with torch.no_grad():
        bn.gamma.fill_(2.0)
        bn.beta.fill_(5.0)
    out = bn(t)
    a = 2.0 / math.sqrt(2.0 / 3.0)
    expected_z = [a * (1 - 2) + 5.0, 5.0, a * (3 - 2) + 5.0]  # z' = a (z - mu) + beta
    got = out.flatten().detach()
    np.testing.assert_allclose(got[:3].detach().numpy(), np.log(expected_z), rtol=1e-6)
    assert math.isinf(got[3])  # silent stays silent
    # running stats moved 10% towards (mu = 2, unbiased var = 1)
    np.testing.assert_allclose(bn.running_mean.numpy(), [0.9 * 1 + 0.1 * 2])
    np.testing.assert_allclose(bn.running_var.numpy(), [0.9 * 1 + 0.1 * 1.0])


def test_running_statistics_skip_channels_without_spikes():
    """Channel 0 silent in every batch, channel 1 with one spike (z = 4), channel 2 with z = {1, 3}. Before, the
    silent channel's running mean and variance were pulled towards 0 (0.0052 each after 50 batches, from 1), so
    in evaluation a spike in it was scaled by 1 / sqrt(0.0052 + eps) = 14 instead of about 1; the single spike
    pulled the variance towards 0 as well. nn.BatchNorm1d on channel 2's two values is the reference there."""
    t = torch.full((2, 3), math.inf)
    t[0, 1] = math.log(4.0)
    t[:, 2] = torch.tensor([0.0, math.log(3.0)])
    bn = TTFSBatchNorm(3)
    reference = torch.nn.BatchNorm1d(1)
    with torch.no_grad():
        reference.running_mean.fill_(1.0)
    for _ in range(50):
        out = bn(t)
        reference(torch.exp(t[:, 2:]))
    assert bn.running_mean[0] == 1.0 and bn.running_var[0] == 1.0  # no data: unchanged
    assert bn.running_mean[1] == pytest.approx(4.0 - 3.0 * 0.9**50) and bn.running_var[1] == 1.0
    assert bn.running_mean[2] == pytest.approx(float(reference.running_mean[0]))
    assert bn.running_var[2] == pytest.approx(float(reference.running_var[0]))
    assert torch.isinf(out[:, 0]).all()  # silent stays silent


def test_output_is_clamped_at_t_min():
    bn = TTFSBatchNorm(1, eps=0.0).eval()
    with torch.no_grad():
        bn.running_mean.fill_(10.0)  # c = 1 - 10 < 0: small z map below z_min = 1
    out = bn(torch.tensor([[0.0], [math.log(20.0)]]))
    assert float(out[0, 0]) == 0.0  # clamped: a*1 + c = -8 -> t_min = 0
    assert float(out[1, 0]) == pytest.approx(math.log(11.0))


def _trained_bn(channels, seed=0, tau=1.0):
    torch.manual_seed(seed)
    bn = TTFSBatchNorm(channels, tau=tau)
    for _ in range(5):  # a few training batches to move the running statistics
        t = torch.rand(8, channels, 3, 3) * 2
        t[t > 1.8] = math.inf
        bn(t)
    with torch.no_grad():
        bn.gamma.copy_(torch.linspace(-1.5, 2.0, channels))  # a negative gamma counts as |gamma|
        bn.beta.copy_(torch.linspace(-0.5, 3.0, channels))  # some channels get c <= 0
    return bn.eval()


def test_fold_gives_identical_inference_outputs():
    bn = _trained_bn(6, tau=0.7)  # tau != 1: the delay tau log a, the bias time tau log |c| and exp(t_b / tau)
    a, c = bn.scale_offset(bn.running_mean, bn.running_var)
    assert (c > 0).any() and (c <= 0).any()  # both folded forms are exercised
    t = torch.rand(4, 6, 3, 3) * 3
    t[0, 0, 0, 0] = math.inf
    folded = bn.fold()
    assert isinstance(folded, TTFSDelayBias)
    with torch.no_grad():
        ref, got = bn(t), folded(t)
    assert torch.equal(torch.isinf(ref), torch.isinf(got))
    fin = torch.isfinite(ref)
    torch.testing.assert_close(got[fin], ref[fin], rtol=1e-5, atol=1e-5)


def test_folded_positive_channel_is_the_two_input_neuron_of_eq6():
    # z' = z_a + z_b is the spike of an exp-kernel IF neuron (theta = 1) with two inputs of weight theta:
    # the input delayed by d and the bias spike at t_b. Checked against the event-driven neuron.
    bn = _trained_bn(6, seed=3)
    folded = bn.fold()
    t = torch.rand(3, 6, 1, 1) * 2
    out = folded(t)
    for ch in range(6):
        if folded.sign[ch] <= 0:
            continue
        for b in range(3):
            times = np.array([float(t[b, ch, 0, 0] + folded.delay[ch]), float(folded.bias_time[ch])])
            sim = neuron_first_spike(times, np.array([1.0, 1.0]), kernel="exp", theta=1.0, tau=1.0)
            expected = max(sim, 0.0)  # the module also clamps at t_min = 0
            assert float(out[b, ch, 0, 0]) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_fold_batchnorm_replaces_modules_in_place():
    net = torch.nn.Sequential(torch.nn.Identity(), _trained_bn(2), torch.nn.Sequential(_trained_bn(2, 1)))
    fold_batchnorm(net)
    assert isinstance(net[1], TTFSDelayBias) and isinstance(net[2][0], TTFSDelayBias)


def test_gradients_reach_gamma_and_beta():
    bn = TTFSBatchNorm(2)
    t = torch.rand(5, 2, 2, 2).requires_grad_()
    bn(t).sum().backward()
    assert bn.gamma.grad is not None and bn.beta.grad.abs().sum() > 0
    assert torch.isfinite(t.grad).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(tau=0.0), "tau must be a finite number > 0"),  # was a ZeroDivisionError traceback
    (dict(tau=math.nan), "tau must be a finite number > 0"),  # were NaN times
    (dict(tau=-1.0), "tau must be a finite number > 0"),
    (dict(eps=-1.0), "eps must be a finite number >= 0"),  # sqrt(var - 1): NaN times
    (dict(momentum=math.nan), "momentum must be in"),  # NaN running statistics
    (dict(momentum=2.0), "momentum must be in"),
    (dict(t_min=math.inf), "t_min must be a finite number"),
])
def test_nonsense_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TTFSBatchNorm(2, **kwargs)
    folded = {k: v for k, v in kwargs.items() if k in ("tau", "t_min")}
    if folded:
        with pytest.raises(ConfigError, match=message):
            TTFSDelayBias(torch.zeros(2), torch.zeros(2), torch.ones(2), **folded)


@pytest.mark.parametrize("bad", [math.nan, -math.inf])
def test_nan_and_minus_inf_times_are_refused(bad):
    """Before, a NaN time fired at t_min = 0 and a -inf time came out silent (+inf), with the batch's statistics
    taken from the rest; ``deepspike.ttfs`` promises a ConfigError in every module for both."""
    t = torch.tensor([[0.5], [1.0], [bad]])
    bn = TTFSBatchNorm(1)
    with pytest.raises(ConfigError, match="NaN or -inf"):
        bn(t)
    assert bn.running_mean[0] == 1.0 and bn.running_var[0] == 1.0
    with pytest.raises(ConfigError, match="NaN or -inf"):
        TTFSDelayBias(torch.zeros(1), torch.zeros(1), torch.ones(1))(t)


def test_a_spike_beyond_the_z_domains_range_is_refused_not_miscomputed():
    """z = exp(t/tau) at t/tau = 50: z^2 overflows float32, so the variance was inf, a = gamma/sqrt(inf) = 0 and every
    spike of the channel came out at tau log beta = 0 (float64, where nothing overflows, gives 0, 0, 0, 0.0503), and
    the running variance became inf for good; at t/tau = 90 z itself overflows and evaluation made the spike silent."""
    t = torch.tensor([[0.5], [1.0], [2.0], [2.5]])
    exact = TTFSBatchNorm(1, tau=0.05).double()(t.double()).detach()
    assert exact[3, 0] == pytest.approx(0.05 * math.log(1.0 + math.sqrt(3.0)), rel=1e-6)  # z' = a (z - mu) + 1
    bn = TTFSBatchNorm(1, tau=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the message is all that is printed (no warning of a scalar with a graph)
        with pytest.raises(ConfigError, match="t/tau = 50 overflows"):
            bn(t.requires_grad_())
    assert bn.running_mean[0] == 1.0 and bn.running_var[0] == 1.0  # no overflow reached the running statistics
    bn.eval()
    late = torch.tensor([[0.5], [4.5]])
    with pytest.raises(ConfigError, match="t/tau = 90 overflows"):
        bn(late)
    with pytest.raises(ConfigError, match="t/tau = 90 overflows"):
        bn.fold()(late)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_times_are_computed_in_float32(dtype):
    """As in every TTFS layer, float16/bfloat16 times are computed in float32 and come back in their own dtype: spikes
    at t/tau 10 to 13 were refused in float16 training ("overflows the z = exp(t/tau) batch statistics", float32 takes
    them up to ~44), bfloat16 training raised a RuntimeError from the running mean's lerp, and evaluation returned
    float32 times. Training, evaluation and the folded form equal the float32 results rounded."""
    g = torch.Generator().manual_seed(0)
    t = (torch.rand(4, 3, 2, 2, generator=g) * 3 + 10).to(dtype)
    bn = TTFSBatchNorm(3)
    ref = copy.deepcopy(bn)
    out = bn(t)
    assert out.dtype == dtype and torch.equal(out, ref(t.float()).to(dtype))
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    bn.eval()
    folded = bn.fold()
    for module in (bn, folded):
        out = module(t)
        assert out.dtype == dtype and torch.equal(out, module(t.float()).to(dtype))
