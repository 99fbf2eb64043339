"""The adaptive-threshold LIF (``AdaptiveLIF``): spikes by hand on one neuron (the intervals lengthen), spikes and
input gradients against a float64 loop written here, ``beta = 0`` against the plain LIF, and the state
``(v, a)`` carried across calls."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.carry import temporal_carry


def _reference(x, k, th, rho, beta, reset):
    """The module docstring's equations with a rectangular surrogate (width 1, the default) written out here."""
    v = a = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = k * v + x[t]
        theta = th + beta * a
        u = h - theta
        s = (u >= 0).to(x.dtype) + (u.abs() < 0.5).to(x.dtype) * (u - u.detach())
        v = h * (1 - s) if reset == "zero" else h - theta * s
        a = rho * a + s
        out.append(s)
    return torch.stack(out)


def test_one_neuron_by_hand_fires_ever_more_slowly():
    """Constant input 0.625, no leak, threshold 1, beta 0.5, rho 0.8, reset by subtraction: h = 0.625, 1.25 (fires,
    v = 0.25, a = 1), 0.875 < 1.5, 1.5 >= 1.4 (fires, v = 0.1, a = 1.64), 0.725 < 1.82, 1.35 < 1.656, 1.975 >=
    1.5248 (fires): spikes at steps 1, 3 and 6; the plain LIF fires at 1, 3, 4, 6, ..."""
    x = torch.full((7, 1), 0.625)
    s = AdaptiveLIF(NeuronParams(decay=1.0, threshold=1.0, reset="subtract"), adapt_decay=0.8, adapt_scale=0.5)(x)
    assert s[:, 0].nonzero().flatten().tolist() == [1, 3, 6]
    assert LIF(1.0, 1.0, "subtract")(x.clone())[:, 0].nonzero().flatten().tolist() == [1, 3, 4, 6]


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_spikes_and_input_gradients_match_a_float64_loop(reset):
    torch.manual_seed(0)
    x = (torch.rand(10, 4, 6, dtype=torch.float64) * 0.9).requires_grad_()
    ref = _reference(x, 0.7, 0.8, 0.85, 0.3, reset)
    g = torch.randn_like(ref)
    (ref_grad,) = torch.autograd.grad((ref * g).sum(), x)
    x32 = x.detach().float().requires_grad_()
    ours = AdaptiveLIF(NeuronParams(decay=0.7, threshold=0.8, reset=reset), adapt_decay=0.85, adapt_scale=0.3)(x32)
    (ours * g.float()).sum().backward()
    assert ours.sum() > 20 and torch.equal(ours.double(), ref.detach())
    torch.testing.assert_close(x32.grad.double(), ref_grad, rtol=1e-5, atol=1e-5)


def test_no_adaptation_is_the_plain_lif():
    torch.manual_seed(1)
    x = (torch.rand(9, 3, 5) * 0.8).requires_grad_()
    params = NeuronParams(decay=0.5, threshold=0.6, reset="zero")
    ours = AdaptiveLIF(params, adapt_scale=0.0)(x)
    lif = LIF(0.5, 0.6, "zero")(x * 1)
    assert torch.equal(ours, lif)
    torch.testing.assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(lif.sum(), x)[0])


def test_a_run_in_pieces_carries_membrane_and_adaptation():
    torch.manual_seed(2)
    x = (torch.rand(12, 2, 4) * 0.9).requires_grad_()
    neuron = AdaptiveLIF(NeuronParams(decay=0.9, threshold=0.7, reset="subtract"), adapt_decay=0.9, adapt_scale=0.4)
    whole = neuron(x)
    with temporal_carry(neuron):
        pieces = torch.cat([neuron(x[:5]), neuron(x[5:])])
    assert torch.equal(pieces, whole)
    torch.testing.assert_close(torch.autograd.grad(pieces.sum(), x)[0], torch.autograd.grad(whole.sum(), x)[0])


@pytest.mark.parametrize(("rho", "beta"), [(1.5, 0.2), (0.9, -0.1), (float("nan"), 0.2), (0.9, float("inf")),
                                         (0.9, 1e39)])
def test_bad_adaptation_settings_are_one_line(rho, beta):
    with pytest.raises(ConfigError, match="^adapt_decay=.* must be a number in \\[0, 1\\] and adapt_scale="):
        AdaptiveLIF(NeuronParams(), adapt_decay=rho, adapt_scale=beta)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_input_keeps_a_float32_state(dtype):
    """On bf16 / fp16 input the spikes are those of the float32 neuron on the same (rounded) values, and with
    beta = 0 those of the LIF (whose low-precision kernels keep a float32 membrane)."""
    torch.manual_seed(3)
    x = (torch.rand(16, 8, 64) * 0.6).to(dtype)
    params = NeuronParams(decay=0.8, threshold=0.9, reset="subtract")
    ours = AdaptiveLIF(params, adapt_decay=0.9, adapt_scale=0.3)(x)
    assert ours.dtype == dtype
    assert torch.equal(ours.float(), AdaptiveLIF(params, adapt_decay=0.9, adapt_scale=0.3)(x.float()))
    assert torch.equal(AdaptiveLIF(params, adapt_scale=0.0)(x), LIF(0.8, 0.9, "subtract")(x.clone()))


def test_the_largest_float32_adaptation_silences_a_neuron_after_one_spike():
    # beta = FLOAT32_MAX: the first spike lifts the threshold to inf, so the neuron never fires again; a neuron that
    # never fired keeps its threshold th (beta * 0 = 0). beta = 1e39, accepted before, was inf in float32: inf * 0
    # made every threshold NaN and every spike NaN from the second step on (measured), so it is refused
    x = torch.tensor([[[1.0, 0.1]]] * 4)  # [T=4, B=1, 2]: one neuron driven hard, one silent
    s = AdaptiveLIF(NeuronParams(decay=1.0, threshold=1.0, reset="subtract"), adapt_decay=0.5,
                    adapt_scale=FLOAT32_MAX)(x)
    assert s[:, 0].tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
