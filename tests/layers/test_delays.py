"""Learnable synaptic delays (``layers.delays``) against hand-written loops over synapses and steps, finite
differences, the paper's width schedule, and the places that must refuse or count them."""

import math

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.delays import SIGMA_END, DelayedLinear, round_all_delays_
from deepspike.layers.fan_out import fan_out_map, is_synaptic_layer


def _layer(n=4, m=3, d=5, seed=0, bias=False):
    torch.manual_seed(seed)
    return DelayedLinear(n, m, d, bias=bias)


def test_whole_step_delays_at_the_final_width_shift_each_synapse():
    layer = _layer(bias=True)
    with torch.no_grad():
        layer.position.copy_(torch.randint(0, 5, layer.position.shape).float())
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    layer.sigma.fill_(1e-3)  # a one-hot kernel
    x = torch.rand(9, 2, 4)  # [T, B, N]
    d, w = layer.discrete_delays(), layer.weight.detach()
    ref = torch.zeros(9, 2, 3)
    for t in range(9):
        for m in range(3):
            ref[t, :, m] = layer.bias[m]
            for n in range(4):
                if t - d[m, n] >= 0:
                    ref[t, :, m] += w[m, n] * x[t - d[m, n], :, n]
    assert torch.allclose(layer(x), ref, atol=1e-6)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-6), (torch.bfloat16, 0.05)])
def test_an_input_of_another_dtype_runs_in_it_with_the_bias(dtype, tol):
    # the kernel was cast to the input's dtype but the bias was not: conv1d raised "Input type (double) and bias
    # type (float) should be the same"
    layer = _layer(bias=True).round_delays_()
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x = torch.rand(7, 1, 4, dtype=torch.float64)  # [T, B = 1, N]
    d, w, b = layer.discrete_delays(), layer.weight.detach().double(), layer.bias.detach().double()
    ref = b.expand(7, 1, 3).clone()
    for t in range(7):
        for m in range(3):
            for n in range(4):
                if t - d[m, n] >= 0:
                    ref[t, :, m] += w[m, n] * x[t - d[m, n], :, n]
    y = layer(x.to(dtype))
    assert y.dtype == dtype and torch.allclose(y.double(), ref, atol=tol, rtol=tol)


def test_a_bfloat16_layer_delivers_a_long_delay_at_its_one_step():
    """bfloat16 holds whole numbers only to even ones above 256: the steps 299, 300 and 301 of a bfloat16 arange were
    all 300, and a one-hot kernel at 300 spread the weight over three steps (a third each)."""
    layer = DelayedLinear(1, 1, 600).to(torch.bfloat16)
    with torch.no_grad():
        layer.position.fill_(300.0)  # a bfloat16 number
        layer.weight.fill_(1.0)
    layer.sigma.fill_(1e-3)
    kernel = layer.kernel()[0, 0]
    assert torch.nonzero(kernel).flatten().tolist() == [300] and kernel[300] == 1.0


def test_rounded_delays_deliver_each_spike_once_at_the_rounded_step():
    layer = _layer(seed=3)
    layer.sigma.fill_(0.23)
    d = layer.discrete_delays()
    x = torch.rand(8, 2, 4)
    rounded = layer.round_delays_()(x)
    kernel = layer.kernel()
    assert torch.equal(kernel != 0, torch.nn.functional.one_hot(d, 5).bool())  # exactly one tap per synapse
    ref = torch.zeros(8, 2, 3)
    for t in range(8):
        for m in range(3):
            for n in range(4):
                if t - d[m, n] >= 0:
                    ref[t, :, m] += layer.weight[m, n].detach() * x[t - d[m, n], :, n]
    assert torch.allclose(rounded, ref, atol=1e-6) and torch.equal(layer.discrete_delays(), d)


def test_round_all_delays_rounds_every_delayed_layer_of_a_net_and_counts_them():
    net = torch.nn.Sequential(_layer(seed=4), torch.nn.Sequential(torch.nn.ReLU(), _layer(n=3, m=2, seed=5)))
    by_hand = [_layer(seed=4), _layer(n=3, m=2, seed=5)]
    for layer in by_hand:
        layer.round_delays_()
    assert round_all_delays_(net) == 2
    for layer, ref in zip([net[0], net[1][1]], by_hand):
        assert torch.equal(layer.position, ref.position) and float(layer.sigma) == float(ref.sigma)
        assert torch.equal(layer.position, layer.position.round())  # whole steps
    assert round_all_delays_(torch.nn.Sequential(torch.nn.Linear(3, 2))) == 0  # no delays: nothing to round


def test_gaussian_kernel_and_output_equal_a_numpy_loop():
    layer = _layer(n=2, m=2, d=4, seed=1)
    layer.sigma.fill_(0.8)
    x = torch.rand(6, 3, 2)
    p = layer.position.detach().numpy().clip(0, 3)
    g = np.exp(-((np.arange(4)[None, None, :] - p[..., None]) ** 2) / (2 * 0.8**2))
    kernel = layer.weight.detach().numpy()[..., None] * g / g.sum(-1, keepdims=True)  # [M, N, D]
    assert np.allclose(layer.kernel().detach().numpy(), kernel, atol=1e-6)
    ref = np.zeros((6, 3, 2))
    for t in range(6):
        for k in range(min(t + 1, 4)):
            ref[t] += x[t - k].numpy() @ kernel[:, :, k].T
    assert np.allclose(layer(x).detach().numpy(), ref, atol=1e-5)


def test_gradients_of_weights_and_positions_match_finite_differences():
    layer = _layer(n=3, m=2, d=4, seed=2).double()
    layer.sigma.fill_(0.9)
    x = torch.rand(7, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        layer.position.copy_(torch.rand(2, 3, dtype=torch.float64) * 2.5 + 0.25)  # inside [0, D - 1]

    def f(weight, position):  # in eval mode: training would clamp the position in place first
        return torch.func.functional_call(layer.eval(), {"weight": weight, "position": position}, (x,))

    w, p = layer.weight.detach().clone().requires_grad_(), layer.position.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (w, p))


def test_width_schedule_is_the_papers():
    """Its code: sigma_0 = max_delay // 2, times (0.23 / sigma_0)^(1 / (epochs // 4)) after each of the first
    epochs // 4 epochs."""
    layer = _layer(d=25)
    values = []
    for epoch in range(14):
        layer.begin_epoch(epoch, 14)  # shrinks over 14 // 4 = 3 epochs
        values.append(float(layer.sigma))
    alpha = (SIGMA_END / 12) ** (1 / 3)
    assert values[:4] == pytest.approx([12, 12 * alpha, 12 * alpha**2, SIGMA_END])
    assert values[4:] == pytest.approx([SIGMA_END] * 10)


def test_positions_pushed_past_an_end_come_back_and_keep_learning():
    layer = _layer(d=5)
    with torch.no_grad():
        layer.position.fill_(2.0)
        layer.position[0, 0], layer.position[1, 1] = 7.5, -3.0  # where an update left them
    layer.sigma.fill_(1.0)
    x = torch.rand(6, 2, 4)
    layer.eval()(x)
    assert float(layer.position.detach()[0, 0]) == 7.5  # evaluation leaves parameters alone
    out = layer.train()(x)
    p = layer.position.detach()
    assert float(p[0, 0]) == 4.0 and float(p[1, 1]) == 0.0
    out[3:, :, 0].sum().backward()  # at the end of the range the gradient still flows
    assert layer.position.grad[0, 0] != 0


def test_positions_start_inside_the_range_and_act_from_its_nearest_end_outside_it():
    """Positions start uniform in [0, D - 1]; one outside it (a loaded or updated layer, in evaluation, which leaves
    the parameters alone) delivers at the nearest end: its rounded delay, and its kernel, are those of D - 1 or 0."""
    torch.manual_seed(0)
    start = DelayedLinear(40, 50, 5).position.detach()
    assert 0.0 <= float(start.min()) < 0.1 and 3.9 < float(start.max()) <= 4.0  # 2000 draws of U(0, 4)
    layer = _layer(d=5)
    with torch.no_grad():
        layer.position.fill_(2.0)
        layer.position[0, 0], layer.position[1, 1] = 7.5, -3.0
    layer.sigma.fill_(1.0)
    delays = layer.discrete_delays()
    assert int(delays[0, 0]) == 4 and int(delays[1, 1]) == 0
    x = torch.rand(6, 2, 4)
    out = layer.eval()(x)
    with torch.no_grad():
        layer.position.clamp_(0, 4)
    assert torch.equal(out, layer(x))


def test_checks_and_counting():
    for bad in (0, 1025, True):
        with pytest.raises(ConfigError, match="max_delay must be an integer from 1 to 1024"):
            DelayedLinear(3, 2, bad)
    layer = _layer()
    with pytest.raises(ConfigError, match=r"needs \[T, B, 4\] sequences; got shape \(2, 4\)"):
        layer(torch.zeros(2, 4))
    assert is_synaptic_layer(layer) and torch.equal(fan_out_map(layer, (2, 4)), torch.full((2, 4), 3.0))
    assert "max_delay=5" in repr(layer) and math.isclose(float(layer.sigma), 2.0)
    assert type(layer.position).lr_scale == 100.0


@pytest.mark.parametrize("in_features, out_features, bad", [
    (0, 3, "in_features"), (2.5, 3, "in_features"), (True, 3, "in_features"), (-1, 3, "in_features"),
    (3, 0, "out_features"), (3, "2", "out_features"),
])
def test_feature_counts_that_are_no_whole_number_at_least_one_are_refused_at_construction(in_features, out_features,
                                                                                          bad):
    """in_features=0 / True were built (a layer of no or one input), out_features=0 and -1 failed at the first forward
    or in torch.empty with a RuntimeError, 2.5 a TypeError."""
    with pytest.raises(ConfigError, match=f"DelayedLinear {bad}=.* must be a whole number >= 1") as caught:
        DelayedLinear(in_features, out_features, 4)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_or_boolean_spikes_are_refused_in_one_line(dtype):
    """An int64 or int32 spike train gave all-zero outputs: the kernel was cast to the input's dtype, truncating every
    weight (|w| < 1) to 0; a bool one was a NotImplementedError from conv1d."""
    with pytest.raises(ConfigError, match=f"floating-point input .* got {dtype}") as caught:
        _layer()(torch.ones(3, 2, 4, dtype=dtype))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("bias", [False, True])
def test_no_steps_give_an_empty_output_and_the_first_steps_are_unchanged(bias):
    """T = 0 was a conv1d RuntimeError (the padded sequence is shorter than the kernel of D = 5 delays); a neuron or a
    recurrent layer gives ``[0, B, M]`` there. The padding for it leaves any other T's output alone: T = 1 is step 0
    of a longer input, ``bias + w[:, n]`` weighed by the kernel's tap at delay 0."""
    layer = _layer(bias=bias)
    x = torch.rand(6, 2, 4, requires_grad=True)
    assert layer(x[:0]).shape == (0, 2, 3)
    one = layer(x[:1])
    want = x[0] @ layer.kernel()[..., 0].T + (layer.bias if bias else 0.0)
    torch.testing.assert_close(one[0], want)
    torch.testing.assert_close(layer(x)[:1], one)


def test_two_training_calls_before_one_backward_give_the_sum_of_their_gradients():
    """The training-mode clamp of the positions wrote them in place at every call, even when none was out of range,
    and the first call's graph had saved them: backward through two calls (two views of a batch, a layer used twice)
    was a RuntimeError ("modified by an inplace operation"). Now each gradient is the sum of the two calls' own."""
    layer = _layer().train()
    x1, x2 = torch.rand(6, 2, 4), torch.rand(6, 2, 4)
    (layer(x1).sum() + 2 * layer(x2).sum()).backward()
    both = [layer.weight.grad.clone(), layer.position.grad.clone()]
    alone = []
    for x, k in ((x1, 1.0), (x2, 2.0)):
        layer.zero_grad()
        (k * layer(x).sum()).backward()
        alone.append([layer.weight.grad.clone(), layer.position.grad.clone()])
    for got, first, second in zip(both, *alone, strict=True):
        torch.testing.assert_close(got, first + second)
    assert both[1].abs().sum() > 0
