"""The current-based LIF (``SynapticLIF``): spikes against snnTorch's ``Synaptic`` and a hand-written float64 loop,
its synaptic current's custom backward against autograd through that loop, the closed-form PSP of one input spike,
and its state carried across calls."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.synaptic import SynapticLIF, synaptic_current


def _reference(x, alpha, k, th, reset):
    """``i_t = alpha i_{t-1} + x_t``, ``h_t = k v_{t-1} + i_t``, ``s_t = 1[h_t >= th]``, reset: a plain loop with a
    rectangular surrogate (width 1, the neuron's default) written out here."""
    i = v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        i = alpha * i + x[t]
        h = k * v + i
        hard = (h >= th).to(h.dtype)
        s = hard + ((h - th).abs() < 0.5).to(h.dtype) * (h - h.detach())  # the value of hard, the box's slope
        v = h * (1 - s) if reset == "zero" else h - th * s
        out.append(s)
    return torch.stack(out)


def test_reset_to_zero_gives_the_spikes_of_snntorch_synaptic():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    x = torch.rand(20, 3, 5) * 0.8
    ours = SynapticLIF(NeuronParams(decay=0.8, threshold=1.0, reset="zero"), syn_decay=0.6)(x.clone())
    theirs = snn.Synaptic(alpha=0.6, beta=0.8, threshold=1.0, reset_mechanism="zero", reset_delay=False)
    syn, mem = theirs.init_synaptic()
    spikes = []
    for t in range(x.shape[0]):
        spk, syn, mem = theirs(x[t], syn, mem)
        spikes.append(spk)
    assert ours.sum() > 100 and torch.equal(ours, torch.stack(spikes))


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_spikes_and_input_gradients_match_a_float64_loop(reset):
    torch.manual_seed(1)
    x = (torch.rand(12, 4, 6, dtype=torch.float64) * 0.9).requires_grad_()
    ref = _reference(x, 0.7, 0.6, 1.0, reset)
    g = torch.randn_like(ref)
    (ref_grad,) = torch.autograd.grad((ref * g).sum(), x)
    x32 = x.detach().float().requires_grad_()
    ours = SynapticLIF(NeuronParams(decay=0.6, threshold=1.0, reset=reset), syn_decay=0.7)(x32 * 1)
    (ours * g.float()).sum().backward()
    assert torch.equal(ours.double(), ref.detach())
    torch.testing.assert_close(x32.grad.double(), ref_grad, rtol=1e-5, atol=1e-5)


def test_one_input_spike_gives_the_difference_of_exponentials():
    """One unit input at t = 0: ``i_t = alpha^t`` and ``h_t = sum_{u<=t} alpha^u k^(t-u)``, which peaks later than
    a LIF's ``k^t``; a threshold just under the peak fires exactly at the peak's step."""
    alpha, k, steps = 0.8, 0.7, 10
    x = torch.zeros(steps, 1, 1)
    x[0] = 1.0
    torch.testing.assert_close(synaptic_current(x, alpha)[:, 0, 0], alpha ** torch.arange(steps, dtype=torch.float32))
    psp = [sum(alpha**u * k ** (t - u) for u in range(t + 1)) for t in range(steps)]
    peak = max(range(steps), key=psp.__getitem__)
    assert peak == 3  # 1.0, 1.5, 1.69, 1.695, 1.596, ...
    s = SynapticLIF(NeuronParams(decay=k, threshold=psp[peak] - 1e-4, reset="zero"), syn_decay=alpha)(x)
    assert s[:, 0, 0].nonzero().flatten().tolist() == [peak]


def test_no_synaptic_decay_is_the_plain_lif():
    torch.manual_seed(2)
    x = torch.rand(9, 2, 7)
    params = NeuronParams(decay=0.5, threshold=0.8, reset="subtract")
    assert torch.equal(SynapticLIF(params, syn_decay=0.0)(x.clone()), LIF(0.5, 0.8, "subtract")(x.clone()))


@pytest.mark.parametrize("detach", [False, True])
def test_a_run_in_pieces_carries_membrane_and_current(detach):
    """Steps [0, 5) then [5, 12) inside ``temporal_carry`` equal one call on all 12 steps; without detaching, the
    input gradients too (the current's ``i0`` gradient crosses the cut)."""
    torch.manual_seed(3)
    x = (torch.rand(12, 3, 4) * 0.7).requires_grad_()
    neuron = SynapticLIF(NeuronParams(decay=0.9, threshold=1.0, reset="subtract"), syn_decay=0.8)
    whole = neuron(x * 1)
    (whole_grad,) = torch.autograd.grad(whole.sum(), x)
    with temporal_carry(neuron, detach=detach):
        pieces = torch.cat([neuron(x[:5] * 1), neuron(x[5:] * 1)])
    (pieces_grad,) = torch.autograd.grad(pieces.sum(), x)
    assert torch.equal(pieces, whole)
    if not detach:
        torch.testing.assert_close(pieces_grad, whole_grad)
    else:
        assert not torch.allclose(pieces_grad[:5], whole_grad[:5])


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "x"])
def test_a_synaptic_decay_outside_0_1_is_one_line(value):
    with pytest.raises(ConfigError, match="syn_decay=.* must be a number in \\[0, 1\\]"):
        SynapticLIF(NeuronParams(), syn_decay=value)
