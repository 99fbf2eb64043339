"""``SpikingSequential``: neuron + tiling average pooling fused, everything else as ``nn.Sequential``."""

import pytest
import torch
from torch import nn

from autograd_graph import node_names
from deepspike.layers.lean_avg_pool import LeanAvgPool2d
from deepspike.layers.spiking_sequential import SpikingSequential, tiling_kernel
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons import IF, LIF

pytest.importorskip("numba")


def _layers():
    torch.manual_seed(0)
    return [
        TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)),
        LIF(decay=0.6, threshold=0.4, surrogate="arctan", inplace=True),
        TimeDistributed(LeanAvgPool2d(2)),
        TimeDistributed(nn.Conv2d(4, 6, 3, padding=1)),
        IF(threshold=0.5, reset="subtract"),
        TimeDistributed(nn.AvgPool2d((2, 3))),
        TimeDistributed(nn.Flatten()),
        TimeDistributed(nn.Linear(6 * 2 * 2, 3)),
    ]


def _run(seq, x):
    seq.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y = seq(x)
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    return y.detach(), x.grad, [p.grad.clone() for p in seq.parameters()]


@pytest.mark.parametrize("time_invariant", [False, True])
def test_same_values_and_gradients_as_nn_sequential(time_invariant):
    torch.manual_seed(1)
    x = torch.rand(5, 3, 2, 8, 12) * 2
    if time_invariant:
        x = x[0].unsqueeze(0).expand_as(x)
    layers = _layers()
    fused, plain = SpikingSequential(*layers), nn.Sequential(*layers)
    (y1, gx1, gp1), (y2, gx2, gp2) = _run(fused, x), _run(plain, x)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    assert y1.abs().sum() > 0
    torch.testing.assert_close(gx1, gx2, rtol=1e-5, atol=1e-6)
    for a, b in zip(gp1, gp2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert fused.state_dict().keys() == plain.state_dict().keys()


def _layout(t: torch.Tensor) -> str:
    if t.is_contiguous():
        return "contiguous"
    return "channels_last" if t.is_contiguous(memory_format=torch.channels_last) else "other"


@pytest.mark.parametrize(("size", "channels_last"), [((16, 16), True), ((8, 12), False)])
def test_a_pooled_map_before_a_convolution_is_channels_last_from_8x8_on(size, channels_last):
    """The pooled 8x8 map reaches the next convolution channels-last, the 4x6 one contiguous (oneDNN's
    channels-last convolutions are slower on small maps); both give nn.Sequential's values and gradients."""
    torch.manual_seed(2)
    x = torch.rand(3, 2, 2, *size) * 2
    layers = _layers()[:5]
    seen = []
    layers[3].module.register_forward_pre_hook(lambda m, i: seen.append(_layout(i[0])))
    fused, plain = SpikingSequential(*layers), nn.Sequential(*layers)
    (y1, gx1, gp1) = _run(fused, x)
    assert seen == ["channels_last" if channels_last else "contiguous"]
    (y2, gx2, gp2) = _run(plain, x)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx1, gx2, rtol=1e-5, atol=1e-6)
    for a, b in zip(gp1, gp2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_under_channels_last_weights_a_small_pooled_map_stays_channels_last():
    """train.channels_last lays the convolutions' weights out channels-last: a 4x6 pooled map is not copied to
    contiguous there (the convolution would lay it out channels-last again)."""
    layers = _layers()[:5]
    layers[3].module.to(memory_format=torch.channels_last)
    seen = []
    layers[3].module.register_forward_pre_hook(lambda m, i: seen.append(_layout(i[0])))
    x = torch.rand(3, 2, 2, 8, 12)
    SpikingSequential(*layers)(x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (3, 2)))
    assert seen == ["channels_last"]


def test_pairs_are_fused_only_when_nothing_watches_them():
    seq = SpikingSequential(*_layers())
    x = torch.rand(4, 2, 2, 8, 12, requires_grad=True)
    names = node_names
    assert "_LeanAvgPoolBackward" not in names(seq(x))  # the pooling ran inside the neuron's kernel
    seen = []
    handle = seq[1].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    assert "_LeanAvgPoolBackward" in names(seq(x)) and seen == [(4, 2, 4, 8, 12)]  # a hook sees real spikes
    handle.remove()
    assert tiling_kernel(TimeDistributed(nn.AvgPool2d(3, 2))) is None  # overlapping windows
    assert tiling_kernel(TimeDistributed(nn.AvgPool2d(2, padding=1))) is None
    assert tiling_kernel(TimeDistributed(nn.AvgPool2d((2, 3)))) == (2, 3)


def test_windows_that_do_not_tile_run_unfused():
    seq = SpikingSequential(LIF(threshold=0.3), TimeDistributed(nn.AvgPool2d(2)))
    x = torch.rand(3, 2, 1, 5, 5)  # 5 is not a multiple of 2
    assert seq(x).shape == (3, 2, 1, 2, 2)
    assert torch.equal(seq(x), nn.Sequential(*seq)(x))
