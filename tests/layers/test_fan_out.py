"""Fan-out maps against brute-force counts and hand counts: convs (borders, strides), pools, linear, TTFS."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.fan_out import conv_fan_out, fan_out_map, is_synaptic_layer, pooled_fan_out
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.methods import get_method
from deepspike.models.spec import Architecture, Conv, Flatten, Linear, Pool
from deepspike.ttfs.layers import TTFSAvgPool2d


def _brute_fan_out(c, h, w, out_ch, k, s, p):
    """For every input position count (output channel, output position) pairs whose window covers it."""
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    fan = torch.zeros(c, h, w)
    for y, x, ky, kx in itertools.product(range(ho), range(wo), range(k), range(k)):
        iy, ix = y * s + ky - p, x * s + kx - p
        if 0 <= iy < h and 0 <= ix < w:
            fan[:, iy, ix] += out_ch
    return fan


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (2, 3, 0), (5, 1, 0)])
def test_conv_fan_out_matches_brute_force(k, s, p):
    conv = nn.Conv2d(3, 4, k, s, p, bias=False)
    fan = fan_out_map(conv, (3, 7, 7))
    assert torch.equal(fan, _brute_fan_out(3, 7, 7, 4, k, s, p))
    # ops of an event map = its convolution with an all-ones kernel, summed
    events = (torch.rand(2, 3, 7, 7, generator=torch.Generator().manual_seed(k)) < 0.3).float()
    ones = torch.ones(4, 3, k, k)
    assert float((events * fan).sum()) == float(F.conv2d(events, ones, None, s, p).sum())


def test_pool_and_linear_fan_out():
    assert torch.equal(fan_out_map(nn.Linear(6, 4), (6,)), torch.full((6,), 4.0))
    pool = fan_out_map(nn.AvgPool2d(2), (1, 5, 5))  # 2x2 windows, stride 2: the last row/column is dropped
    expected = torch.ones(1, 5, 5)
    expected[:, 4, :] = expected[:, :, 4] = 0
    assert torch.equal(pool, expected)
    assert torch.equal(
        conv_fan_out((2, 3, 3), 2, 3, padding=1, groups=2)[0],
        torch.tensor([[4.0, 6, 4], [6, 9, 6], [4, 6, 4]]),
    )  # 3x3 "same" depthwise: windows covering



def test_padded_conv_and_pool_fan_out_by_hand():
    conv = nn.Conv2d(1, 3, 3, padding=1, bias=False)
    # 3x3 kernel, padding 1, on 4x4: a corner pixel is covered by 4 output positions, an inner one by 9;
    # each reaches 3 output channels
    fan = fan_out_map(conv, (1, 4, 4))
    assert fan[0, 0, 0] == 12 and fan[0, 1, 1] == 27 and fan[0, 0, 1] == 18
    assert torch.equal(fan_out_map(nn.AvgPool2d(2), (2, 4, 4)), torch.ones(2, 4, 4))


class FakeTTFSLayer(nn.Module):
    is_ttfs_layer = True

    def __init__(self, weight, stride=1, padding=0):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.stride, self.padding = stride, padding


class FakeTTFSPool(nn.Module):
    is_ttfs_layer = True
    ttfs_role = "pool"


def test_ttfs_layers_and_other_modules():
    dense = FakeTTFSLayer(torch.ones(5, 3))  # [M=5, N=3]: every input reaches 5 neurons
    assert torch.equal(fan_out_map(dense, (3,)), torch.full((3,), 5.0))
    conv = FakeTTFSLayer(torch.ones(2, 1, 3, 3), padding=1)  # same geometry as the padded nn.Conv2d
    assert torch.equal(fan_out_map(conv, (1, 4, 4)), fan_out_map(nn.Conv2d(1, 2, 3, padding=1), (1, 4, 4)))
    assert is_synaptic_layer(dense) and is_synaptic_layer(nn.AvgPool2d(2)) and is_synaptic_layer(nn.Linear(2, 3))
    for other in (FakeTTFSPool(), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten()):
        assert not is_synaptic_layer(other) and fan_out_map(other, (1, 4, 4)) is None


def test_every_methods_average_pool_is_a_synaptic_layer():
    """spikebp's ``SpikingAvgPool`` (input ``[T, B, C, H, W]``: the recorder's per-call shape is ``(B, C, H, W)``)
    and ttfs/stdbp's ``TTFSAvgPool2d`` (times ``[B, C, H, W]``) have the fan-out of ``nn.AvgPool2d``. By hand, a 2x2
    pool at stride 1 on a 3x3 map: corners are in 1 window, edges in 2, the centre in 4."""
    by_hand = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    for pool in (SpikingAvgPool(2, stride=1), TTFSAvgPool2d(2, stride=1)):
        assert is_synaptic_layer(pool)
    assert torch.equal(fan_out_map(TTFSAvgPool2d(2, stride=1), (2, 3, 3)), by_hand.expand(2, 3, 3))
    assert torch.equal(fan_out_map(SpikingAvgPool(2, stride=1), (5, 2, 3, 3)), by_hand.expand(5, 2, 3, 3))
    assert torch.equal(fan_out_map(nn.AvgPool2d(2, stride=1), (2, 3, 3)), by_hand.expand(2, 3, 3))


@pytest.mark.parametrize("method", ["spikebp", "stbp"])
def test_pooling_synapses_are_counted_alike_in_every_method(method):
    """Conv -> 2x2 average pool -> FC on a 4x4 map: every spike of the neuron layer before the pool lies in exactly
    one window, so the pool does one AC per spike, whether it is stbp's ``LeanAvgPool2d`` or spikebp's pool with
    its own neuron."""
    arch = Architecture("t", (Conv(4, 3, padding=1), Pool("avg", 2), Flatten(), Linear(3, act=False)), (1, 4, 4), 3)
    net = get_method(method, {"timesteps": 6}).build(arch).eval()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), ActivityRecorder(net) as recorder:
        net(x)
    pools = [r for r in recorder.synapses.values() if r.module_type in ("SpikingAvgPool", "LeanAvgPool2d")]
    assert len(pools) == 1 and pools[0].events > 0
    assert (pools[0].acs, pools[0].macs) == (recorder.layers["body.1"].spikes, 0)


def _module_fan_out(conv: nn.Conv2d, in_shape: tuple[int, int, int]) -> torch.Tensor:
    """Independent count: the layer itself (its own padding code) with all-ones weights, d/dx of its output sum."""
    conv.weight.data.fill_(1.0)
    x = torch.zeros((1, *in_shape), requires_grad=True)
    return torch.autograd.grad(conv(x).sum(), x)[0][0]


def test_conv_fan_out_counts_padding_modes_and_string_padding():
    # circular padding 1, 3x3 kernel, 1 -> 2 channels on 4x4: a translation-invariant count, 2 * 9 = 18 for every
    # input (zeros padding gave 8 at the corners, 12 at the edges: the wrapped-around taps were not counted)
    circ = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
    assert fan_out_map(circ, (1, 4, 4)).tolist() == [[[18.0] * 4] * 4]
    # replicate, 1 -> 1, 3x3, padding 1 on 3x3 by hand: the padded rows 0..4 lie in 1, 2, 3, 2, 1 windows; input row
    # 0 holds padded rows 0-1 (1 + 2), row 1 row 2 (3), row 2 rows 3-4 (2 + 1): 3 x 3 = 9 everywhere (zeros: 4, 6, 9)
    rep = nn.Conv2d(1, 1, 3, padding=1, padding_mode="replicate")
    assert fan_out_map(rep, (1, 3, 3)).tolist() == [[[9.0] * 3] * 3]
    cases = [dict(padding=1, padding_mode="reflect"), dict(padding=(2, 1), stride=2, padding_mode="replicate"),
             dict(padding="same", dilation=(1, 2), padding_mode="circular"), dict(padding="same", groups=2),
             dict(padding="valid", padding_mode="reflect")]
    for kw in cases:  # "same" raised ValueError (int('s')) before
        conv = nn.Conv2d(2, 4, 3, bias=False, **kw)
        assert torch.equal(fan_out_map(conv, (2, 7, 6)), _module_fan_out(conv, (2, 7, 6))), kw


def test_pool_fan_out_counts_ceil_mode_windows():
    # 2x2 stride 2 on 5x5 with ceil_mode: 3x3 windows, the last row/column of inputs in the partial windows (counted 0
    # before, and a 9-entry next_fan raised RuntimeError: reshaped to the 2x2 floor-mode output)
    pool = nn.AvgPool2d(2, 2, ceil_mode=True)
    assert fan_out_map(pool, (1, 5, 5)).tolist() == [[[1.0] * 5] * 5]
    folded = pooled_fan_out(pool, (1, 5, 5), torch.arange(9.0))  # input (i, j) reaches next_fan[i // 2, j // 2]
    assert folded[0].tolist() == [[3.0 * (i // 2) + j // 2 for j in range(5)] for i in range(5)]
    # 3x3 stride 2 padding 1 on 6x6 with ceil_mode: windows over input rows [-1, 1], [1, 3], [3, 5], [5, 7]: rows
    # 0..5 in 1, 2, 1, 2, 1, 2 windows (floor mode: 3 windows, row 5 in 1)
    per_row = torch.tensor([1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    assert torch.equal(fan_out_map(nn.AvgPool2d(3, 2, 1, ceil_mode=True), (1, 6, 6))[0], per_row[:, None] * per_row)


def test_a_dilated_or_grouped_ttfs_conv_has_its_own_fan_out():
    """A TTFS conv's fan-out took stride and padding only: a dilated one was counted as undilated, a grouped one
    (weight [O, C / groups, k, k]) as reaching every output channel. By hand: a 3x3 kernel of dilation 2 on a 5x5
    map has one output, reached from the 9 positions of rows and columns 0, 2, 4 (was: the undilated 3x3 map's, 1
    to 9); 2 groups of 2 output channels on 2 input channels: each input reaches 2 channels x 1 tap (was 4)."""
    dilated = FakeTTFSLayer(torch.ones(1, 1, 3, 3))
    dilated.dilation = 2
    expected = torch.zeros(1, 5, 5)
    expected[0, ::2, ::2] = 1
    assert torch.equal(fan_out_map(dilated, (1, 5, 5)), expected)
    grouped = FakeTTFSLayer(torch.ones(4, 1, 1, 1))  # 2 input channels, groups = 2 / 1
    assert torch.equal(fan_out_map(grouped, (2, 3, 3)), torch.full((2, 3, 3), 2.0))
