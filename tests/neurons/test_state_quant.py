"""Quantised membranes against snnTorch's ``state_quant`` and ``Leaky(state_quant=...)`` (forward), a hand-stepped
synaptic loop, the clipped straight-through gradient, and the checks that keep the fused kernels and other neurons
out of it."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods.stbp import StbpOptions
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.state_quant import StateQuant
from deepspike.neurons.synaptic import SynapticLIF

snntorch = pytest.importorskip("snntorch")
quant = pytest.importorskip("snntorch.functional.quant")


@pytest.mark.parametrize("bits, threshold, low, high", [(1, 1.0, 0.0, 0.2), (3, 0.7, 0.1, 0.3), (8, 2.5, 0.0, 0.0)])
def test_levels_and_rounding_equal_snntorch_state_quant(bits, threshold, low, high):
    torch.manual_seed(bits)
    h = torch.randn(20000) * 2 * threshold
    theirs = quant.state_quant(num_bits=bits, threshold=threshold, lower_limit=low, upper_limit=high)(h)
    assert torch.equal(StateQuant(bits, low, high)(h, threshold), theirs)


def test_ties_and_their_neighbours_and_every_level_equal_snntorch():
    theirs_fn = quant.state_quant(num_bits=4, threshold=0.7, lower_limit=0.1, upper_limit=0.3)
    levels = StateQuant(4, 0.1, 0.3).levels(0.7)
    mids = (levels[1:] + levels[:-1]) / 2
    h = torch.cat([levels, mids, torch.nextafter(mids, torch.tensor(9.0)), torch.nextafter(mids, torch.tensor(-9.0))])
    assert torch.equal(StateQuant(4, 0.1, 0.3)(h, 0.7), theirs_fn(h))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_low_and_high_precision_membranes_take_the_float32_level(dtype, bits):
    """bfloat16 cannot index 2^9 levels itself: the level is found in float32, then cast."""
    torch.manual_seed(bits)
    h = (torch.randn(5000) * 1.5).to(dtype)
    q = StateQuant(bits)
    out = q(h, 1.0)
    assert out.dtype == dtype and torch.equal(out, q(h.float(), 1.0).to(dtype))


def test_hand_worked_levels_ties_and_non_finite_values():
    q = StateQuant(2, 0.0, 0.5)  # 4 levels on [-1, 1.5]: -1, -1/6, 2/3, 1.5
    assert torch.allclose(q.levels(1.0), torch.tensor([-1.0, -1 / 6, 2 / 3, 1.5]))
    h = torch.tensor([0.25, -5.0, 9.0, float("inf"), float("-inf"), float("nan")])
    out = q(h, 1.0)  # 0.25 is exactly between -1/6 and 2/3: the lower level
    assert torch.allclose(out[:5], torch.tensor([-1 / 6, -1.0, 1.5, 1.5, -1.0])) and torch.isnan(out[5])


def test_clipped_straight_through_gradient():
    """1 inside the levels' range [-1, 1.2] (its ends included), 0 where the membrane was clamped."""
    h = torch.tensor([-3.0, -1.0, -0.3, 0.0, 0.9, 1.2, 1.3, 7.0], requires_grad=True)
    StateQuant(3)(h, 1.0).mul(torch.arange(1.0, 9.0)).sum().backward()
    assert h.grad.tolist() == [0, 2, 3, 4, 5, 6, 0, 0]


@pytest.mark.parametrize("bits", [2, 4])
def test_lif_with_state_quant_equals_snntorch_leaky(bits):
    torch.manual_seed(0)
    x = torch.rand(30, 4, 50) * 0.6  # [T, B, N]
    th = 0.8
    leaky = snntorch.Leaky(beta=0.7, threshold=th, reset_mechanism="zero",
                           state_quant=quant.state_quant(num_bits=bits, threshold=th, lower_limit=0.1, upper_limit=0.3))
    mem, theirs = leaky.init_leaky(), []
    for t in range(30):
        s, mem = leaky(x[t], mem)
        theirs.append(s)
    ours = LIF(decay=0.7, threshold=th, reset="zero", state_quant=StateQuant(bits, 0.1, 0.3))(x)
    assert torch.equal(ours, torch.stack(theirs)) and ours.sum() > 100
    assert not torch.equal(ours, LIF(decay=0.7, threshold=th, reset="zero")(x))  # the quantisation matters here


def test_synaptic_neuron_quantises_its_membrane_not_its_current():
    torch.manual_seed(1)
    x = torch.rand(12, 3, 7)
    q = StateQuant(3)
    params = NeuronParams(decay=0.8, threshold=0.5, reset="subtract", state_quant=q)
    out = SynapticLIF(params, 0.6)(x)
    i, v, ref = torch.zeros(3, 7), torch.zeros(3, 7), []
    for t in range(12):
        i = 0.6 * i + x[t]
        h = q(0.8 * v + i, 0.5)
        s = (h >= 0.5).float()
        v = h - 0.5 * s
        ref.append(s)
    assert torch.equal(out, torch.stack(ref))


def test_the_fused_kernels_step_aside_and_other_neurons_refuse():
    params = NeuronParams(decay=0.5, threshold=1.0, state_quant=StateQuant(2))
    torch.manual_seed(3)
    x = torch.rand(6, 4, 5) * 1.5
    with pytest.raises(ConfigError, match=r"float membranes \(no state_quant\)"):
        neuron_multistep(x, params, fused=True)
    spikes = neuron_multistep(x, params)[0]
    assert torch.equal(spikes, neuron_multistep(x, params, fused=False)[0])
    assert not torch.equal(spikes, neuron_multistep(x, NeuronParams(decay=0.5, threshold=1.0))[0])  # it matters
    with pytest.raises(ConfigError, match="^an adaptive LIF has no quantised membrane"):
        AdaptiveLIF(params)
    with pytest.raises(ConfigError, match="^a learnable neuron has no quantised membrane"):
        LearnableLIF(params)
    with pytest.raises(ConfigError, match="state_quant must be a StateQuant or None"):
        NeuronParams(state_quant=4)


@pytest.mark.parametrize("bad, message", [({"bits": 0}, "state_bits must be an integer from 1 to 16, got 0"),
                                          ({"bits": 17}, "state_bits must be an integer from 1 to 16, got 17"),
                                          ({"bits": True}, "state_bits must be an integer"),
                                          ({"bits": 2, "low": -0.1}, "state_low must be a finite number >= 0"),
                                          ({"bits": 2, "high": float("inf")}, "state_high must be a finite")])
def test_bad_settings(bad, message):
    with pytest.raises(ConfigError, match=message):
        StateQuant(**bad)


@pytest.mark.parametrize("low, high, threshold", [(1e300, 0.2, 0.5), (0.0, 1e39, 0.5), (0.0, 0.2, 3e38)])
def test_ranges_past_float32_are_refused_in_one_line_before_training(low, high, threshold):
    quant = StateQuant(4, low, high)
    with pytest.raises(ConfigError, match=r"reach .*, past float32's largest number 3.40282e\+38$"):
        quant.levels(threshold)
    with pytest.raises(ConfigError, match=r"^method.state_low=.* past float32's largest number"):
        StbpOptions(state_bits=4, state_low=low, state_high=high, threshold=threshold)
    StateQuant(4, 0.0, 0.2).check_fits(2e38)  # 2.4e38 still fits
