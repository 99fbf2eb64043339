"""tdBN and TEBN (``layers.temporal_batchnorm``) against hand-computed statistics over T, B, H, W."""

import math
import re

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.temporal_batchnorm import TemporalEffectiveBatchNorm, threshold_dependent_batch_norm
from deepspike.layers.time_distributed import TimeDistributed

# x [T=2, B=1, C=2, H=1, W=2]; channel 0 holds 1, 3 (t=0) and 5, 7 (t=1): mean 4, biased variance
# (9 + 1 + 1 + 9) / 4 = 5 over (T, B, H, W); channel 1 holds 0, 0, 0, 4: mean 1, variance (1 + 1 + 1 + 9) / 4 = 3.
X = torch.tensor([[[[[1.0, 3.0]], [[0.0, 0.0]]]], [[[[5.0, 7.0]], [[0.0, 4.0]]]]])
EPS = 1e-5
HAT0 = [(v - 4.0) / math.sqrt(5.0 + EPS) for v in (1.0, 3.0, 5.0, 7.0)]
HAT1 = [(v - 1.0) / math.sqrt(3.0 + EPS) for v in (0.0, 0.0, 0.0, 4.0)]


def _channels(y):
    return y[:, 0, 0].flatten().tolist(), y[:, 0, 1].flatten().tolist()  # [T, B, C, 1, W] -> per channel, t-major


def test_tdbn_normalises_over_T_B_H_W_and_scales_to_alpha_vth():
    tdbn = TimeDistributed(threshold_dependent_batch_norm((2, 1, 2), threshold=0.5, alpha=3.0))
    c0, c1 = _channels(tdbn(X))
    assert c0 == pytest.approx([1.5 * h for h in HAT0], rel=1e-6)  # alpha V_th = 1.5, lambda = 1, beta = 0
    assert c1 == pytest.approx([1.5 * h for h in HAT1], rel=1e-6)
    bn = tdbn.module
    assert bn.running_mean.tolist() == pytest.approx([0.4, 0.1])  # momentum 0.1 from 0
    assert bn.running_var.tolist() == pytest.approx([0.9 + 0.1 * 5 * 4 / 3, 0.9 + 0.1 * 3 * 4 / 3])  # unbiased
    assert bn.parametrizations.weight.original.tolist() == [1.0, 1.0]  # the trained lambda starts at 1


def test_tdbn_affine_is_lambda_times_the_scaled_value():
    bn = threshold_dependent_batch_norm((2,), threshold=0.25, alpha=2.0)
    with torch.no_grad():
        bn.parametrizations.weight.original.copy_(torch.tensor([2.0, -1.0]))
        bn.bias.copy_(torch.tensor([0.5, 0.0]))
    y = bn(torch.tensor([[1.0, 0.0], [3.0, 2.0]]))  # [B=2, F=2]: x_hat = -1, 1 (per feature, eps aside)
    expected = [2.0 * 0.5 * -1 + 0.5, -0.5 * -1, 2.0 * 0.5 * 1 + 0.5, -0.5 * 1]
    assert y.flatten().tolist() == pytest.approx(expected, rel=1e-4)
    y.sum().backward()  # the gradient reaches lambda through the parametrisation
    assert bn.parametrizations.weight.original.grad is not None


def test_tebn_scales_each_step_of_the_shared_normalisation():
    tebn = TemporalEffectiveBatchNorm((2, 1, 2), timesteps=2)
    with torch.no_grad():
        tebn.step_scale.copy_(torch.tensor([2.0, -0.5]))
    c0, c1 = _channels(tebn(X))
    scale = [2.0, 2.0, -0.5, -0.5]  # t = 0, 0, 1, 1
    assert c0 == pytest.approx([p * h for p, h in zip(scale, HAT0)], rel=1e-6)
    assert c1 == pytest.approx([p * h for p, h in zip(scale, HAT1)], rel=1e-6)


def test_tebn_step_scales_receive_the_gradient_of_their_step():
    """T=2, B=1, F=1, x = [1, 3]: mean 2, biased var 1, x_hat = -+1/sqrt(1 + eps); gamma = 1, beta = 0 and
    y_t = p_t x_hat_t, so for loss = y_0 + 2 y_1 by hand dL/dp_0 = x_hat_0, dL/dp_1 = 2 x_hat_1."""
    tebn = TemporalEffectiveBatchNorm((1,), timesteps=2)
    y = tebn(torch.tensor([1.0, 3.0]).view(2, 1, 1))
    (y[0].sum() + 2 * y[1].sum()).backward()
    hat = 1 / math.sqrt(1 + 1e-5)
    assert tebn.step_scale.grad.tolist() == pytest.approx([-hat, 2 * hat], rel=1e-5)

def test_tebn_refuses_another_number_of_steps_in_one_line():
    with pytest.raises(ConfigError, match="one scale per step for T = 2, got 1"):
        TemporalEffectiveBatchNorm((2, 1, 2), timesteps=2)(X[:1])


def test_tdbn_on_a_time_invariant_input_runs_once_with_the_same_result():
    torch.manual_seed(0)
    x = torch.rand(3, 5, 2, 4, 4)
    once, full = (TimeDistributed(threshold_dependent_batch_norm((2, 4, 4), 0.5, 2.0)) for _ in range(2))
    repeated = x[0].unsqueeze(0).expand(3, *x.shape[1:])  # stride 0 in T: direct encoding's input
    assert torch.allclose(once(repeated), full(repeated.contiguous()), atol=1e-6)
    assert torch.allclose(once.module.running_var, full.module.running_var)


@pytest.mark.parametrize("timesteps", [0, -1, 2.5, True, "4"])
def test_tebn_refuses_a_step_count_that_is_no_whole_number_at_least_one(timesteps):
    """timesteps=0 built a TEBN with no scale at all, 2.5 / True / -1 failed in torch.ones with a TypeError or
    RuntimeError."""
    with pytest.raises(ConfigError, match="TEBN timesteps=") as caught:
        TemporalEffectiveBatchNorm((2, 1, 2), timesteps)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("threshold, alpha, match", [
    (math.nan, 1.0, "tdBN threshold=nan"), (math.inf, 1.0, "tdBN threshold=inf"), (0, 1.0, "tdBN threshold=0"),
    (-1.0, 1.0, "tdBN threshold=-1.0"), ("1", 1.0, "tdBN threshold='1'"), (1.0, math.nan, "tdBN alpha=nan"),
    (1.0, 0.0, "tdBN alpha=0.0"), (1e20, 1e20, "beyond float32's range"),
    # 1e-320 * 0.5 is 0 in float32: every normed layer's output was 0 (a vgg's scores all 0.0)
    (0.5, 1e-320, "tdBN scale alpha * threshold = 4.99994e-321 is below float32's smallest normal 1.175e-38"),
])
def test_tdbn_refuses_a_scale_that_is_not_a_finite_positive_float32(threshold, alpha, match):
    """threshold=nan / inf, or a product beyond float32, silently made every batch-norm weight NaN or inf, 0 or a
    negative value a zero or negated one; a string threshold was a TypeError."""
    with pytest.raises(ConfigError, match=re.escape(match)) as caught:
        threshold_dependent_batch_norm((2,), threshold, alpha)
    assert "\n" not in str(caught.value)
