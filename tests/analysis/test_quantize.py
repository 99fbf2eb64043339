"""Weight quantization: exact levels by hand, per-channel scales, straight-through gradient, model copies."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from deepspike.analysis.quantize import (
    add_fake_quantization,
    quantization_levels,
    quantize_model,
    quantize_weight,
    quantized_state_dict,
    remove_fake_quantization,
)
from deepspike.core.errors import ConfigError
from deepspike.layers.wta_stdp import CompetitiveStdpLayer, Presentation
from deepspike.methods.wta_stdp import WtaStdpOptions, wta_constants

W = torch.tensor([-1.0, -0.4, 0.1, 0.26, 0.75])


def test_two_and_three_bit_levels_by_hand():
    # 2 bits: q = 1, s = max|w| = 1 -> round(w) in {-1, 0, 1}
    assert torch.equal(quantize_weight(W, 2), torch.tensor([-1.0, 0.0, 0.0, 0.0, 1.0]))
    # 3 bits: q = 3, s = 1/3; w/s = -3, -1.2, 0.3, 0.78, 2.25 -> -3, -1, 0, 1, 2
    assert torch.allclose(quantize_weight(W, 3), torch.tensor([-3.0, -1, 0, 1, 2]) / 3)


def test_per_channel_uses_each_rows_max():
    w = torch.tensor([[0.2, -0.11, 0.05], [4.0, 1.1, -2.9]])
    # 3 bits, q = 3: row 0 s = 0.2/3: w/s = 3, -1.65, 0.75 -> 3, -2, 1;
    # row 1 s = 4/3: w/s = 3, 0.825, -2.175 -> 3, 1, -2
    out = quantize_weight(w, 3, per_channel=True)
    expected = torch.tensor([[3.0, -2, 1], [3, 1, -2]]) * torch.tensor([[0.2 / 3], [4.0 / 3]])
    assert torch.allclose(out, expected)
    per_layer = quantize_weight(w, 3)  # one scale 4/3: the small row collapses to 0
    assert torch.equal(per_layer[0], torch.zeros(3))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_number_of_levels_and_grid(bits):
    w = torch.randn(64, 50, generator=torch.Generator().manual_seed(bits))
    q = 2 ** (bits - 1) - 1
    out = quantize_weight(w, bits)
    s = float(w.abs().max()) / q
    k = out / s
    assert torch.allclose(k, k.round(), atol=1e-4)  # every value is an integer multiple of s
    assert k.abs().max().round() == q and torch.unique(out).numel() <= 2 * q + 1
    assert (out - w).abs().max() <= s / 2 + 1e-6  # rounding error at most half a step


def test_full_precision_and_bad_bits():
    assert quantize_weight(W, 32) is W
    with pytest.raises(ConfigError):
        quantize_weight(W, 1)


def test_straight_through_gradient():
    w = torch.randn(5, 4, requires_grad=True)
    quantize_weight(w, 2, per_channel=True).mul(torch.arange(4.0)).sum().backward()
    assert torch.equal(w.grad, torch.arange(4.0).expand(5, 4))  # d Q(w) / dw = 1 inside the range


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4))


def test_quantize_model_copies():
    net = _net()
    before = [p.clone() for p in net.parameters()]
    q = quantize_model(net, 2)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # original untouched
    assert all(n <= 3 for n in quantization_levels(q).values())


def test_fake_quantization_parametrization_round_trip():
    net = _net()
    full = net[3].weight.detach().clone()
    add_fake_quantization(net, 4)
    assert parametrize.is_parametrized(net[3], "weight")
    assert torch.equal(net[3].weight, quantize_weight(full, 4))
    add_fake_quantization(net, 2)  # restaging replaces the 4-bit parametrization, from full precision
    assert torch.equal(net[3].weight, quantize_weight(full, 2))
    remove_fake_quantization(net, bake=True)
    assert not parametrize.is_parametrized(net[3]) and torch.unique(net[3].weight).numel() <= 3


def test_quantized_forward_full_precision_backward():
    net = _net()
    add_fake_quantization(net, 2)
    master = net[3].parametrizations.weight.original
    before = master.detach().clone()
    x = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    net(x).pow(2).sum().backward()
    # forward used 2-bit weights; the straight-through gradient reaches the full-precision master weights
    assert torch.unique(net[3].weight).numel() <= 3 and torch.unique(before).numel() > 3
    torch.optim.SGD(net.parameters(), lr=1e-3).step()
    assert not torch.equal(master, before) and torch.unique(master).numel() > 3
    # the baked state dict loads into a plain copy that computes exactly what the parametrized net computes
    plain = _net()
    plain.load_state_dict(quantized_state_dict(net))
    assert torch.equal(plain(x), net(x))


def test_a_competitive_layers_weights_are_quantised_per_neuron_column():
    """W [inputs, neurons] of the wta_stdp layer, a float64 buffer; 3 bits, q = 3. Per channel a channel is a neuron
    (a column): column 0 s = 0.1 -> 0.1, 0.2, 0.3 as they are; column 1 s = 1/3: w/s = 3, 1.5, 0.75 -> 3, 2, 1.
    Per layer s = 1/3: column 0 w/s = 0.3, 0.6, 0.9 -> 0, 1, 1. The original is left as it was."""
    layer = CompetitiveStdpLayer(3, 2, 2, wta_constants(WtaStdpOptions()), Presentation(10, 150.0, 63.75, 32.0, 5, 3,
                                 1.0, 10), 0.3, 20.0, 1)
    w = torch.tensor([[0.1, 1.0], [0.2, 0.5], [0.3, 0.25]], dtype=torch.float64)
    layer.weight.copy_(w)
    per_neuron = quantize_model(layer, 3, per_channel=True).weight
    assert per_neuron.dtype == torch.float64
    assert torch.allclose(per_neuron, torch.tensor([[0.1, 1.0], [0.2, 2 / 3], [0.3, 1 / 3]], dtype=torch.float64))
    per_layer = quantize_model(layer, 3).weight
    assert torch.allclose(per_layer, torch.tensor([[0.0, 1.0], [1 / 3, 2 / 3], [1 / 3, 1 / 3]], dtype=torch.float64))
    assert torch.equal(layer.weight, w)
    assert quantization_levels(quantize_model(layer, 2)) == {"": 2}  # {0, s}: the weights are not negative


@pytest.mark.parametrize("bits", [65, 99999999999999999999, True])
def test_bits_beyond_64_or_not_an_integer_are_refused(bits):
    """``--bits 99999999999999999999`` ran the sweep at full precision and died in a TypeError drawing its plot."""
    with pytest.raises(ConfigError, match="quantization bits must be"):
        quantize_weight(W, bits)
    with pytest.raises(ConfigError, match="quantization bits must be"):
        add_fake_quantization(nn.Linear(2, 2), bits)


def test_sixty_four_bits_is_full_precision():
    assert torch.equal(quantize_weight(W, 64), W)


def test_tiny_weights_keep_their_levels():
    """A subnormal largest weight (1000 x 2^-149) had a subnormal scale whose float32 inverse overflows: 4 bits gave
    every entry +-max|w| (the zero weight -max|w|). Reference: Q in float64 on the same weights, rounded to float32
    (w/s = -2.8 -> -3 -> -3000/7 units = -429 units once rounded; 0.021 -> 0). A 30-bit scale of max|w| = 1e-31 is
    1.9e-40 (subnormal) too; the normal row beside it keeps its per-channel levels."""
    unit = 2.0 ** -149
    w = torch.tensor([[1000 * unit, -400 * unit, 3 * unit, 0.0], [1.0, -0.4, 0.03, 0.0]])

    def reference(row: torch.Tensor, bits: int) -> torch.Tensor:
        q = 2 ** (bits - 1) - 1
        s = row.double().abs().max() / q
        return (s * torch.clamp(torch.round(row.double() / s), -q, q)).float()

    assert torch.equal(quantize_weight(w[0], 4), reference(w[0], 4))
    assert (quantize_weight(w[0], 4) / unit).tolist() == [1000.0, -429.0, 0.0, 0.0]
    per_channel = quantize_weight(w, 4, per_channel=True)
    assert torch.equal(per_channel[0], reference(w[0], 4))
    torch.testing.assert_close(per_channel[1], reference(w[1], 4), rtol=1e-6, atol=0)  # float32 s = 1/7: last bit
    small = torch.tensor([1e-31, -5e-32, 3e-32, 0.0])
    assert torch.equal(quantize_weight(small, 30), reference(small, 30))
