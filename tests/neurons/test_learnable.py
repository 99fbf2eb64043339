"""``LearnableLIF`` (PLIF / learnable threshold): parameters, their initial values, training moves them, the fixed
parts equal a plain LIF, state carried across calls, spike counting."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.spike_tally import SpikeTally, counting_spikes
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.learnable import LearnableLIF, tau_to_weight
from stepped_run import whole_and_stepped


def test_tau_init_and_parameters():
    m = LearnableLIF(NeuronParams(threshold=0.7), channels=4, tau_init=2.0, learn_threshold=True)
    assert {n for n, _ in m.named_parameters()} == {"w", "threshold"}
    assert m.w.shape == (4,) and m.threshold.shape == (4,)
    torch.testing.assert_close(m.decay(), torch.full((4,), 0.5))  # tau = 2: k = 1 - 1/2
    assert torch.equal(m.threshold.detach(), torch.full((4,), 0.7))
    assert 1 / torch.sigmoid(torch.tensor(tau_to_weight(3.0))).item() == pytest.approx(3.0)
    layer = LearnableLIF(NeuronParams(), learn_decay=False, learn_threshold=True)
    assert [n for n, _ in layer.named_parameters()] == ["threshold"] and layer.threshold.shape == ()


@pytest.mark.parametrize("bad", [1.0, 0.5, math.inf])
def test_bad_tau_init_is_one_line_config_error(bad):
    with pytest.raises(ConfigError, match="tau_init"):
        LearnableLIF(NeuronParams(), tau_init=bad)


def test_fixed_decay_learnt_threshold_equals_lif_forward():
    """With the decay fixed and the threshold at its initial value the layer computes the plain LIF's spikes."""
    x = torch.randn(6, 3, 4, 5, 5)
    lif = LIF(decay=0.3, threshold=0.6)
    m = LearnableLIF(lif.params, channels=4, learn_decay=False, learn_threshold=True)
    assert torch.equal(m(x), lif(x))


def test_plif_reference_trajectory_per_channel():
    """Per channel tau: channel 0 tau = 2, channel 1 tau = 4 (set through w); V += (X - V)/tau, threshold 1."""
    m = LearnableLIF(NeuronParams(threshold=1.0), channels=2)
    with torch.no_grad():
        m.w.copy_(torch.tensor([tau_to_weight(2.0), tau_to_weight(4.0)]))
    x = torch.full((3, 1, 2), 1.6)  # [T, B, C]
    s = m(x)
    # tau 2: 0.8, 0.8*0.5+0.8 = 1.2 (spike), 0.8;  tau 4: 0.4, 0.3+0.4 = 0.7, 0.525+0.4 = 0.925
    assert s[:, 0, 0].tolist() == [0.0, 1.0, 0.0]
    assert s[:, 0, 1].tolist() == [0.0, 0.0, 0.0]


def test_training_moves_tau_and_threshold():
    torch.manual_seed(0)
    m = LearnableLIF(NeuronParams(surrogate="sigmoid"), channels=3, learn_threshold=True)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    w0, th0 = m.w.detach().clone(), m.threshold.detach().clone()
    x = torch.rand(4, 8, 3, 2, 2) * 2
    loss = (m(x).mean() - 0.9) ** 2
    loss.backward()
    opt.step()
    assert not torch.equal(m.w, w0) and not torch.equal(m.threshold, th0)


def test_carry_and_spike_count():
    """Two calls of 3 steps inside temporal_carry equal one call of 6; the tally counts the spikes."""
    m = LearnableLIF(NeuronParams(), channels=2, learn_threshold=True)
    x = torch.rand(6, 2, 2, 3) * 2
    whole = m(x)
    tally = SpikeTally()
    with temporal_carry(m), counting_spikes(m, tally):
        parts = torch.cat([m(x[:3]), m(x[3:])])
    assert torch.equal(parts, whole)
    assert tally.total == whole.sum().item()


def test_channel_mismatch_and_leak_grad_refused():
    with pytest.raises(ConfigError, match="per-channel"):
        LearnableLIF(NeuronParams(), channels=3)(torch.rand(2, 1, 4))
    with pytest.raises(ConfigError, match="leak_grad"):
        LearnableLIF(NeuronParams(decay=0.5, leak_grad=False))


def test_a_bfloat16_run_in_pieces_keeps_the_float32_membrane_of_one_call():
    """PLIF on bfloat16 currents computes in float32; run one step at a time inside ``temporal_carry`` it fires as one
    call on all the steps, with the same input gradient, because the kept membrane is that float32 state. Before, the
    kept ``v_T`` was rounded to bfloat16 at every call: 44 of the 4,000 steps' spikes differed here (of 120 spikes)."""
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(100, 4, 10, generator=g) + 0.6).bfloat16()  # tau 50: 25 to 70 steps to the threshold
    run = whole_and_stepped(LearnableLIF(NeuronParams(threshold=0.5, surrogate="sigmoid"), tau_init=50.0), x, g)
    assert 0 < run.whole.float().sum() < run.whole.numel()
    assert run.parts.dtype == torch.bfloat16 and torch.equal(run.parts, run.whole)
    assert torch.equal(run.parts_grad, run.whole_grad)
    assert run.kept.dtype == torch.float32


@pytest.mark.parametrize("channels", [2.5, True, "3", 0, -1])
def test_channels_that_are_no_whole_number_at_least_one_are_one_line_config_errors(channels):
    """channels=2.5 / True raised TypeError in torch.full, "3" a TypeError ('<' between str and int)."""
    with pytest.raises(ConfigError, match="channels=.* must be a whole number >= 1") as caught:
        LearnableLIF(NeuronParams(), channels=channels)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("tau_init", ["3", math.nan])
def test_tau_init_that_is_no_number_is_a_one_line_config_error(tau_init):
    """tau_init="3" raised TypeError ('>' between str and float)."""
    with pytest.raises(ConfigError, match="tau_init="):
        LearnableLIF(NeuronParams(), tau_init=tau_init)


def _plif_loop(x, w, th, reset, spike_fn):
    """PLIF by hand, one step at a time: h = v + (x - v) sigmoid(w), s = spike_fn(h - th), reset."""
    v = torch.zeros_like(x[0])
    out = []
    for x_t in x:
        h = v + (x_t - v) * torch.sigmoid(w)
        s = spike_fn(h - th)
        v = h * (1 - s) if reset == "zero" else h - th * s
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("neurons", [(3, 4, 5), (7,)])
def test_one_time_constant_and_threshold_per_neuron_equal_a_plain_loop_with_their_gradients(neurons):
    """``neurons=shape``: each neuron its own tau and threshold; spikes and the gradients of every neuron's w and
    threshold (and of the input) equal autograd through a hand-written loop."""
    params = NeuronParams(threshold=0.5, reset="subtract")
    m = LearnableLIF(params, neurons=neurons, learn_threshold=True)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        m.w.copy_(torch.randn(neurons, generator=g))
        m.threshold.add_(0.3 * torch.rand(neurons, generator=g))
    assert m.w.shape == neurons and m.threshold.shape == neurons
    x = (2 * torch.rand(12, 2, *neurons, generator=g)).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    w_ref = m.w.detach().clone().requires_grad_()
    th_ref = m.threshold.detach().clone().requires_grad_()
    s = m(x)
    ref = _plif_loop(x_ref, w_ref, th_ref, "subtract", params.spike_fn)
    assert torch.equal(s, ref) and 0.05 * s.numel() < s.sum() < 0.95 * s.numel()
    weights = torch.randn(s.shape, generator=g)
    (s * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(m.w.grad, w_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m.threshold.grad, th_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    assert m.w.grad.abs().amin() >= 0 and (m.w.grad != 0).float().mean() > 0.5  # each neuron its own gradient


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"neurons": (4, 0)}, r"neurons=\(4, 0\) must be one sample's shape"),
    ({"neurons": (4,), "channels": 4}, r"neurons=\(4,\) must be one sample's shape, whole numbers >= 1 \(and no "
                                       r"channels\)"),
    ({"neurons": 4}, r"neurons=4 must be one sample's shape"),
])
def test_bad_per_neuron_shapes_are_one_line_errors(kwargs, message):
    with pytest.raises(ConfigError, match=rf"^{message}"):
        LearnableLIF(NeuronParams(), **kwargs)


def test_a_per_neuron_layer_given_another_shape_is_a_one_line_error():
    m = LearnableLIF(NeuronParams(), neurons=(4, 2))
    with pytest.raises(ConfigError, match=r"per-neuron neuron of shape \(4, 2\) got input \(3, 1, 4, 3\) "
                                          r"\(expected \[T, B, 4, 2\]\)"):
        m(torch.zeros(3, 1, 4, 3))


def test_a_float64_neuron_runs_its_fixed_decay_and_threshold_in_float64():
    """The fixed decay was a float32 tensor: a float64 net ran k = 0.800000012 (and th = 0.600000024) where OTTT's
    and e-prop's traces used 0.8. A plain float64 loop of the LIF (reset by subtraction) is the reference."""
    params = NeuronParams(decay=0.8, threshold=0.6, reset="subtract")
    m = LearnableLIF(params, learn_decay=False, learn_threshold=False).double()
    x = torch.rand(40, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v, membranes = torch.zeros(3, 5, dtype=torch.float64), []
    for x_t in x:
        h = 0.8 * v + x_t
        v = h - 0.6 * (h >= 0.6).double()
        membranes.append(v)
    with temporal_carry(m):
        m(x)
        torch.testing.assert_close(m.state, membranes[-1], rtol=0, atol=1e-14)
