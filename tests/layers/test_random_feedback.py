"""Random feedback matrices and e-prop's bias traces in a traced layer, against autograd of a layer whose weight is
the feedback matrix (the input gradient) and hand sums (the bias gradient)."""

import pytest
import torch
from torch import nn

from deepspike.layers.random_feedback import attach_random_feedback
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.carry import temporal_carry


@pytest.mark.parametrize("layer", [nn.Linear(6, 4), nn.Conv2d(2, 3, 3, stride=2, padding=1)])
def test_the_input_gradient_goes_through_the_feedback_matrix_and_the_bias_takes_its_trace(layer):
    torch.manual_seed(0)
    wrapper = TimeDistributed(layer)
    assert attach_random_feedback(nn.Sequential(wrapper), seed=1) == 1
    b = wrapper.feedback
    shape = (3, 5, 6) if isinstance(layer, nn.Linear) else (3, 5, 2, 7, 7)  # [T, B, ...]
    x = torch.rand(shape, requires_grad=True)
    decay = 0.5
    with temporal_carry(wrapper, detach=True, trace_decay=decay, bias_trace=True):
        y = wrapper(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    torch.testing.assert_close(y, TimeDistributed(layer)(x))  # the output is the layer's own

    twin = type(layer)(*_args(layer))  # the same layer with B as its weight: autograd's input gradient is B^T g
    twin.weight.data.copy_(b)
    x_ref = x.detach().clone().requires_grad_()
    (TimeDistributed(twin)(x_ref) * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)

    dims = (1,) if isinstance(layer, nn.Linear) else (1, 3, 4)  # sum over batch (and pixels) per step
    c = [1.0, 1.0 + decay, 1.0 + decay + decay ** 2]  # c_t = decay c_{t-1} + 1
    expected_bias = sum(c[t] * g[t].sum(dim=tuple(d - 1 for d in dims)) for t in range(3))
    torch.testing.assert_close(layer.bias.grad, expected_bias)


def _args(layer):
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    return layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding


def test_without_e_props_bias_traces_the_bias_gradient_is_the_steps_own():
    layer = nn.Linear(3, 2)
    wrapper = TimeDistributed(layer)
    x = torch.rand(4, 2, 3)
    with temporal_carry(wrapper, detach=True, trace_decay=0.5):
        y = wrapper(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    torch.testing.assert_close(layer.bias.grad, g.sum(dim=(0, 1)))


def test_feedback_matrices_have_the_default_initialisation_range_and_stay_out_of_the_state_dict():
    net = nn.Sequential(TimeDistributed(nn.Linear(100, 50)), TimeDistributed(nn.Conv2d(3, 4, 5)))
    attach_random_feedback(net, seed=7)
    for wrapper in net:
        fan_in = wrapper.module.weight[0].numel()
        b = wrapper.feedback
        assert b.abs().max() <= fan_in ** -0.5 and b.abs().max() > 0.9 * fan_in ** -0.5
        assert abs(b.mean()) < 0.1 * fan_in ** -0.5
    assert set(net.state_dict()) == {"0.module.weight", "0.module.bias", "1.module.weight", "1.module.bias"}


def test_the_i_th_layer_draws_from_its_own_seed():
    # seed * 1000003 + i (module docstring): two same-shaped layers get different matrices, each torch.rand of its own
    # generator scaled to U(-1/sqrt(3), 1/sqrt(3)); a shared seed would give every layer of a shape the same B
    net = nn.Sequential(TimeDistributed(nn.Linear(3, 2)), TimeDistributed(nn.Linear(3, 2)))
    attach_random_feedback(net, seed=5)
    bound = 3 ** -0.5
    for i, wrapper in enumerate(net):
        u = torch.rand((2, 3), generator=torch.Generator().manual_seed(5 * 1_000_003 + i), dtype=torch.float64)
        torch.testing.assert_close(wrapper.feedback, (u * 2 * bound - bound).float())
    assert not torch.equal(net[0].feedback, net[1].feedback)
