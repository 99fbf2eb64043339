"""The current-based LIF (``SynapticLIF``): spikes against snnTorch's ``Synaptic`` and a hand-written float64 loop,
its synaptic current's custom backward against autograd through that loop, the closed-form PSP of one input spike,
and its state carried across calls."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.synaptic import SynapticLIF, synaptic_current
from stepped_run import whole_and_stepped


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


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_low_precision_current_is_summed_in_float32_and_rounded_once(dtype):
    """The running current is float32: each step equals a float32 scan of the same input, rounded once (a scan in
    bfloat16 itself drifts by up to about 1% here); the gradient likewise."""
    torch.manual_seed(5)
    x = (torch.rand(40, 8, 32) * 0.3).to(dtype).requires_grad_()
    current = synaptic_current(x, 0.9)
    running, expected = torch.zeros(8, 32), []
    for t in range(40):
        running = 0.9 * running + x[t].detach().float()
        expected.append(running.to(dtype))
    assert current.dtype == dtype and torch.equal(current, torch.stack(expected))
    g = torch.rand(40, 8, 32).to(dtype)
    (grad,) = torch.autograd.grad(current, x, g)
    back, expected_grad = torch.zeros(8, 32), []
    for t in range(39, -1, -1):
        back = 0.9 * back + g[t].float()
        expected_grad.append(back.to(dtype))
    assert torch.equal(grad, torch.stack(expected_grad[::-1]))


def test_a_carried_current_of_another_batch_is_one_line():
    neuron = SynapticLIF(NeuronParams(decay=0.5), syn_decay=0.5)
    with temporal_carry(neuron), pytest.raises(ConfigError, match=r"^initial synaptic current shape \(2, 4\) does "
                                                                  r"not match one step of the input \(3, 4\)$"):
        neuron(torch.rand(2, 2, 4))
        neuron(torch.rand(2, 3, 4))


def test_a_bfloat16_run_in_pieces_keeps_the_float32_current_and_membrane_of_one_call():
    """One call on bfloat16 keeps the synaptic current's running sum and the membrane in float32 from step to step;
    run a step at a time inside ``temporal_carry`` the neuron now carries both in float32, so it fires as one call
    and gets the same input gradient. Before, both were kept rounded to bfloat16: 74 of the 4,000 steps' spikes
    differed here (of 163 spikes)."""
    g = torch.Generator().manual_seed(5)
    x = (torch.rand(100, 4, 10, generator=g) * 0.006 + 0.003).bfloat16()
    neuron = SynapticLIF(NeuronParams(decay=0.99, threshold=1.0, surrogate="sigmoid"), syn_decay=0.9)
    run = whole_and_stepped(neuron, x, g)
    assert 0 < run.whole.float().sum() < run.whole.numel()
    assert run.parts.dtype == torch.bfloat16 and torch.equal(run.parts, run.whole)
    assert torch.equal(run.parts_grad, run.whole_grad)
    assert [state.dtype for state in run.kept] == [torch.float32, torch.float32]


def test_the_synaptic_current_is_twice_differentiable():
    """The backward's reverse scan is itself recorded under ``create_graph=True`` (``_recorded_scan``), so second
    derivatives through ``i_t = alpha i_{t-1} + x_t`` (in ``x`` and ``i0``) match finite differences in float64."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    i0 = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: synaptic_current(a, 0.7, b) ** 2, (x, i0))
    # the recorded reverse scan by hand: x = 1, alpha = 0.5, T = 3: i = (1, 1.5, 1.75); L = sum_t i_t^2 / 2 sends
    # dL/di = i, which requires grad, so g_t = i_t + 0.5 g_{t+1} runs recorded: g = (2.1875, 2.375, 1.75)
    ones = torch.ones(3, 1, 1, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad((synaptic_current(ones, 0.5) ** 2).sum() / 2, ones, create_graph=True)
    assert grad.flatten().tolist() == [2.1875, 2.375, 1.75]
