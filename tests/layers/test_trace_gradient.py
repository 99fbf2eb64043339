"""``layers.trace_gradient`` under bfloat16 autocast (``train.precision=bf16``): the step's backward runs in the
incoming gradient's dtype, against the same layer's float32 trace gradient by hand."""

import pytest
import torch
from torch import nn

from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.carry import temporal_carry


@pytest.mark.parametrize("layer", [nn.Linear(6, 4), nn.Conv2d(2, 3, 3, padding=1)])
def test_a_traced_layer_backpropagates_under_bf16_autocast(layer):
    torch.manual_seed(0)
    wrapper = TimeDistributed(layer)
    shape = (3, 5, 6) if isinstance(layer, nn.Linear) else (3, 5, 2, 4, 4)  # [T, B, ...]
    x = torch.rand(shape, requires_grad=True)
    decay = 0.5
    with temporal_carry(wrapper, detach=True, trace_decay=decay), torch.autocast("cpu", dtype=torch.bfloat16):
        y = wrapper(x)  # was: RuntimeError, expected m1 and m2 to have the same dtype (BFloat16 != float)
    assert y.dtype == torch.bfloat16
    g = torch.randn(y.shape)
    (y.float() * g).sum().backward()
    assert x.grad.dtype == torch.float32 and layer.weight.grad.dtype == torch.float32
    trace = torch.stack([x[0], decay * x[0] + x[1], decay ** 2 * x[0] + decay * x[1] + x[2]]).detach()
    twin = type(layer)(*_args(layer))
    twin.load_state_dict(layer.state_dict())
    reference = TimeDistributed(twin)  # float32: the same gradient, the weight's from the trace a_t
    (reference(trace) * g).sum().backward()
    weight_grad = twin.weight.grad.clone()
    x_ref = x.detach().clone().requires_grad_()
    (TimeDistributed(twin)(x_ref) * g).sum().backward()
    for got, expected in ((layer.weight.grad, weight_grad), (x.grad, x_ref.grad)):
        assert (got - expected).norm() < 0.02 * expected.norm()  # bfloat16's rounding, summed


def _args(layer):
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    return layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding


@pytest.mark.parametrize("padding", [{"padding": 1, "padding_mode": "circular"}, {"padding": (1, 2),
                                     "padding_mode": "reflect"}, {"padding": 1, "padding_mode": "replicate"},
                                     {"padding": "same"}, {"padding": "same", "kernel_size": 4}, {"padding": "valid"},
                                     {"padding": 1}])
def test_a_traced_convolution_pads_as_the_layer_does(padding):
    # trace decay 0: a_t = x_t, so the traced step is the layer itself; nn.Conv2d's own autograd is the reference.
    # Before: padding modes other than zeros were computed with zero padding (outputs 1.2 off for circular and
    # reflect), and padding "same" / "valid" gave a RuntimeError from convolution_backward.
    torch.manual_seed(0)
    kwargs = dict(padding)
    layer = nn.Conv2d(2, 3, kwargs.pop("kernel_size", 3), **kwargs)
    twin = nn.Conv2d(2, 3, layer.kernel_size, **kwargs)
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 2, 5, 6, requires_grad=True)  # [T, B, C, H, W]
    y = _traced(layer, x)
    x_ref = x.detach().clone().requires_grad_()
    y_ref = TimeDistributed(twin)(x_ref)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn(y.shape)
    (y * g).sum().backward()
    (y_ref * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.weight.grad, twin.weight.grad)
    torch.testing.assert_close(layer.bias.grad, twin.bias.grad)


def _traced(layer, x):
    wrapper = TimeDistributed(layer)
    with temporal_carry(wrapper, detach=True, trace_decay=0.0):
        return wrapper(x)


@pytest.mark.parametrize("decay", [0.9, 0.99])
def test_a_bfloat16_input_keeps_a_float32_trace(decay):
    """OTTT / e-prop under train.precision=bf16 hand a traced layer bfloat16 spikes: its trace a_t was summed in
    bfloat16 (64 steps: up to 2.4% / 6.7% from the exact trace of the same spikes for decay 0.9 / 0.99); now
    float32 (a float64 loop's to float32 rounding), carried across calls, and the weight gradient g a^T reads it
    rounded once."""
    torch.manual_seed(0)
    layer = nn.Linear(200, 3)
    wrapper = TimeDistributed(layer)
    x = (torch.rand(64, 5, 200) < 0.3).bfloat16()
    exact = torch.zeros(5, 200, dtype=torch.float64)
    for x_t in x.double():
        exact = decay * exact + x_t
    with temporal_carry(wrapper, detach=True, trace_decay=decay), torch.autocast("cpu", dtype=torch.bfloat16):
        wrapper(x[:40])
        y = wrapper(x[40:])
        trace, _ = wrapper.presynaptic_trace()
    torch.testing.assert_close(trace.double(), exact, rtol=1e-6, atol=0)
    assert trace.dtype == torch.float32
    g = torch.randn(y.shape[1:])
    (y[-1].float() * g).sum().backward()  # the last step's weight gradient: g^T a_T
    expected = g.double().T @ exact
    torch.testing.assert_close(layer.weight.grad.double(), expected, rtol=2**-7, atol=2**-7 * expected.abs().max())
