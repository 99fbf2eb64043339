"""NeuNorm (wu2019 eq. 9-10): the auxiliary trace, the subtraction, their gradients, and placement."""

import pytest
import torch

from deepspike.layers.neunorm import NeuNorm, auxiliary_trace
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons.carry import temporal_carry


def test_auxiliary_trace_is_moving_average_of_channel_mean():
    # F = 2 maps, 2 positions; position 0: both maps fire, position 1: one of two fires.
    # reading k_tau2 + v = 1 with k = 0.9: x_t = 0.9 x_{t-1} + 0.1 * mean_f o
    # pos 0 (mean 1): 0.1, 0.19, 0.271; pos 1 (mean 0.5): 0.05, 0.095, 0.1355
    o = torch.zeros(3, 1, 2, 1, 2)  # [T, B, F, H, W]
    o[:, :, :, 0, 0] = 1
    o[:, :, 0, 0, 1] = 1
    x = auxiliary_trace(o, 0.9)
    assert x.shape == (3, 1, 1, 1, 2)
    assert x[:, 0, 0, 0, 0].tolist() == pytest.approx([0.1, 0.19, 0.271])
    assert x[:, 0, 0, 0, 1].tolist() == pytest.approx([0.05, 0.095, 0.1355])


def test_trace_converges_to_the_mean_firing_rate():
    # with k + v = 1 the steady state of x is the mean firing itself (here 0.25)
    o = torch.zeros(200, 1, 4, 1, 1)
    o[:, :, 0] = 1
    assert auxiliary_trace(o, 0.9)[-1].item() == pytest.approx(0.25, abs=1e-6)


def test_neunorm_output_and_gradients_by_hand():
    # T = 2, F = 2, one position, k = 0.5. o = [[1, 0], [1, 1]] -> channel means 0.5, 1
    # x1 = 0.5 * 0.5 = 0.25; x2 = 0.5 * 0.25 + 0.5 * 1 = 0.625. U = [2, -1]:
    # out1 = [1 - 2 * .25, 0 + .25] = [.5, .25]; out2 = [1 - 1.25, 1 + .625] = [-.25, 1.625]
    nn_ = NeuNorm((2, 1, 1), decay=0.5)
    with torch.no_grad():
        nn_.scale.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1))
    o = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).view(2, 1, 2, 1, 1).requires_grad_()
    out = nn_(o)
    assert out.flatten().tolist() == pytest.approx([0.5, 0.25, -0.25, 1.625])
    out.sum().backward()
    # dL/dU_f = -(x1 + x2) = -0.875 for both maps
    assert nn_.scale.grad.flatten().tolist() == pytest.approx([-0.875, -0.875])
    # dL/do_{t,f} = 1 - (U_1 + U_2) * sum_{s>=t} dx_s/do_{t,f}; dx1/do1 = .5/2 = .25, dx2/do1 = .125,
    # dx2/do2 = .25 -> t=1: 1 - (.25 + .125) = .625, t=2: 1 - .25 = .75
    assert o.grad.flatten().tolist() == pytest.approx([0.625, 0.625, 0.75, 0.75])


def test_no_steps_give_no_steps():
    """T = 0 (a stream before its first step): an empty trace and output, not a crash in ``torch.stack([])``."""
    o = torch.rand(0, 2, 3, 4, 4)
    assert auxiliary_trace(o, 0.5).shape == (0, 2, 1, 4, 4)
    assert NeuNorm((3, 4, 4))(o).shape == o.shape


def test_neunorm_starts_as_identity():
    o = (torch.rand(3, 2, 4, 5, 5) > 0.5).float()
    assert torch.equal(NeuNorm((4, 5, 5))(o), o)  # U = 0 at initialisation


def _neunorms(model):
    return [m for m in model.modules() if isinstance(m, NeuNorm)]


@pytest.mark.parametrize("name, expected", [("stbp_mnist", 1), ("wu2019_cifarnet", 4), ("wu2019_small", 1)])
def test_neunorm_sits_between_conv_layers(name, expected):
    # conv -> conv connections only: N conv layers give N - 1 NeuNorms (pools in between are fine)
    arch = create_architecture(name, width=0.05)
    model = get_method("stbp", {"timesteps": 2, "neunorm": True}).build(arch)
    assert len(_neunorms(model)) == expected
    assert not _neunorms(get_method("stbp", {"timesteps": 2}).build(arch))


def test_neunorm_scale_gets_gradient_in_a_network():
    torch.manual_seed(0)
    model = get_method("stbp", {"timesteps": 3, "neunorm": True}).build(
        create_architecture("stbp_mnist", width=0.25, input_shape=(1, 12, 12)))
    out = model(torch.rand(4, 1, 12, 12))
    out.sum().backward()
    assert _neunorms(model)[0].scale.grad.abs().sum() > 0


def test_neunorm_counts_the_map_layers_of_a_batch_norm_net():
    """vgg11 at 28x28 with batch-norm: 8 conv layers, NeuNorm on the spikes of the first 7 (the dry walk that counts
    them used to stop at the first batch-norm with that layer's refusal)."""
    arch = create_architecture("vgg11", width=0.0625, input_shape=(1, 28, 28))
    model = get_method("stbp", {"timesteps": 2, "neunorm": True, "norm": "bn"}).build(arch)
    assert len(_neunorms(model)) == 7


@pytest.mark.parametrize("decay", [0.9, 0.99])
def test_a_bfloat16_trace_runs_in_float32_and_rounds_once(decay):
    """train.precision=bf16 gives NeuNorm bfloat16 spikes: the trace was kept in bfloat16 (here up to 4.6e-3 / 7.0e-3
    from the exact trace, relative 1.9% / 5.0%, for decay 0.9 / 0.99); now within one rounding of a float64 loop over
    the same spikes, and a run in pieces (its float32 running value carried) gives one call's output."""
    o = (torch.rand(64, 2, 8, 3, 3, generator=torch.Generator().manual_seed(0)) < 0.3).bfloat16()
    x = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    expected = []
    for o_t in o.double().unbind(0):
        x = decay * x + (1 - decay) * o_t.mean(dim=1, keepdim=True)
        expected.append(x)
    expected = torch.stack(expected)
    trace = auxiliary_trace(o, decay)
    assert trace.dtype == torch.bfloat16
    torch.testing.assert_close(trace.double(), expected, rtol=2**-8, atol=0)
    layer = NeuNorm((8, 3, 3), decay)
    with torch.no_grad():
        layer.scale.uniform_(-1, 1)
    whole = layer(o)
    with temporal_carry(layer):
        pieces = torch.cat([layer(o[:5]), layer(o[5:6]), layer(o[6:])])
    assert torch.equal(pieces, whole)


def test_a_batch_of_another_size_inside_temporal_carry_is_one_config_error():
    """The trace [2, 1, 3, 3] carried from the last call met a batch of 4: a RuntimeError of ``decay x + m_t``."""
    from deepspike.core.errors import ConfigError

    layer = NeuNorm((2, 3, 3))
    with temporal_carry(layer):
        layer(torch.rand(2, 2, 2, 3, 3))
        with pytest.raises(ConfigError, match=r"^initial NeuNorm trace shape \(2, 1, 3, 3\) does not match one step "
                                              r"of the input \(4, 1, 3, 3\)$"):
            layer(torch.rand(2, 4, 2, 3, 3))
