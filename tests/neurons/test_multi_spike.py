"""``neurons.multi_spike``: up to N spikes a step (Xylo's hidden neurons), by hand values and a one-spike reference."""

from __future__ import annotations

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.multi_spike import MultiSpikeLIF, MultiSpikeSynapticLIF, multi_spike_multistep
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.synaptic import synaptic_current


def test_counts_and_reset_by_hand():
    """decay 0.5, th 1, N 31, x = (2.5, 0.6, 40, -1): h 2.5 -> n 2, v 0.5; h 0.85 -> 0; h 40.425 -> 31 (clamped),
    v 9.425; h 3.7125 -> 3, v 0.7125. N = 2 clamps the third step at 2 (v 38.425 -> h 18.2125 -> n 2)."""
    params = NeuronParams(decay=0.5, threshold=1.0, reset="subtract")
    x = torch.tensor([2.5, 0.6, 40.0, -1.0], dtype=torch.float64)[:, None]
    n, v = multi_spike_multistep(x, params, 31)
    assert n.ravel().tolist() == [2, 0, 31, 3] and v.item() == pytest.approx(0.7125, abs=1e-12)
    n, v = multi_spike_multistep(x, params, 2)
    assert n.ravel().tolist() == [2, 0, 2, 2] and v.item() == pytest.approx(16.2125, abs=1e-12)


@pytest.mark.parametrize("detach_reset, want", [(False, (1.0, 2.0)), (True, (3.0, 2.0))])
def test_gradient_is_the_sum_of_the_surrogates_at_each_threshold_by_hand(detach_reset, want):
    """Rectangular surrogate a = 0.5 (2 on |h - j th| < 0.25), th 1, decay 0.5, x = (2.1, 0.9), L = n_1 + n_2.
    h_1 = 2.1: n 2, dn/dh = 2 (j = 2 only), v_1 0.1; h_2 = 0.95: n 0, dn/dh = 2 (j = 1). dL/dx_2 = 2;
    dL/dx_1 = 2 + k dL/dh_2 (1 - th dn_1/dh_1) = 2 + 1 (1 - 2) = 1 (detach_reset: 2 + 1 = 3)."""
    params = NeuronParams(decay=0.5, threshold=1.0, reset="subtract", surrogate_args={"a": 0.5},
                          detach_reset=detach_reset)
    x = torch.tensor([2.1, 0.9], dtype=torch.float64)[:, None].requires_grad_()
    n, _ = multi_spike_multistep(x, params, 31)
    n.sum().backward()
    assert n.ravel().tolist() == [2, 0] and x.grad.ravel().tolist() == pytest.approx(want, abs=1e-12)


def test_one_spike_a_step_is_the_plain_lif_in_values_and_gradients():
    """N = 1 is the one-spike neuron: the reference loop of ``neurons.dynamics`` (float64, arctan surrogate)."""
    params = NeuronParams(decay=0.8, threshold=0.7, reset="subtract", surrogate="arctan")
    x = (torch.randn(6, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.5)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    n, v = multi_spike_multistep(ours, params, 1)
    s, w = neuron_multistep(theirs, params, fused=False)
    weights = torch.linspace(-1, 1, n.numel(), dtype=torch.float64).view_as(n)
    ((n * weights).sum() + v.sum()).backward()
    ((s * weights).sum() + w.sum()).backward()
    assert torch.equal(n, s) and torch.allclose(v, w) and torch.allclose(ours.grad, theirs.grad, atol=1e-12)


def test_the_synaptic_one_counts_the_filtered_current_and_carries_nothing_between_calls():
    """alpha 0.5, decay 0.5, th 0.5: x = (1.5, 0, 0) -> i = (1.5, 0.75, 0.375); h 1.5 -> n 3, v 0; h 0.75 -> 1,
    v 0.25; h 0.125 + 0.375 = 0.5 -> 1. A second call starts again from zero."""
    neuron = MultiSpikeSynapticLIF(NeuronParams(decay=0.5, threshold=0.5, reset="subtract"), 0.5, 31)
    x = torch.tensor([1.5, 0.0, 0.0])[:, None]
    assert neuron(x).ravel().tolist() == [3, 1, 1] and neuron(x).ravel().tolist() == [3, 1, 1]
    assert "max_spikes=31" in repr(neuron) and MultiSpikeLIF(neuron.fixed, 4)(x).ravel().tolist() == [3, 0, 0]


@pytest.mark.parametrize("kind", ["lif", "synaptic"])
def test_a_run_in_pieces_carries_membrane_and_current(kind):
    """Steps [0, 3) then [3, 8) inside ``temporal_carry`` give one call's counts (the membrane, and the synaptic
    current, carried)."""
    params = NeuronParams(decay=0.7, threshold=0.4, reset="subtract")
    neuron = MultiSpikeLIF(params, 31) if kind == "lif" else MultiSpikeSynapticLIF(params, 0.6, 31)
    x = torch.rand(8, 2, 3, generator=torch.Generator().manual_seed(1)) * 2
    whole = neuron(x)
    with temporal_carry(neuron):
        pieces = torch.cat([neuron(x[:3]), neuron(x[3:])])
    assert whole.max() > 1 and torch.equal(pieces, whole)


@pytest.mark.parametrize("most, reset, match", [(0, "subtract", r"bad value 0 for max_spikes: expected an integer"),
                                                (2.5, "subtract", r"bad value 2.5 for max_spikes"),
                                                (True, "subtract", r"bad value True for max_spikes"),
                                                (10 ** 9, "subtract", r"^bad value 1000000000 for max_spikes: expected "
                                                                      r"an integer from 1 to 256 "),
                                                (31, "zero", r"max_spikes=31 needs reset 'subtract'")])
def test_bad_max_spikes_or_reset_is_one_line(most, reset, match):
    with pytest.raises(ConfigError, match=match):
        MultiSpikeLIF(NeuronParams(decay=0.5, reset=reset), most)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_input_keeps_a_float32_membrane(dtype):
    """Small currents (<= 0.05) into th 0.3, decay 0.95 over 200 steps: the membrane in the input's precision lost
    them (bfloat16: 538 of 25,600 counts differed from the float32 run on the same input, 1,368 spikes against
    1,364; float16: 98). The counts are now those of the float32 and of the float64 run on the same half-precision
    input, and ``v_T`` is the float64 one to within one rounding to the input's dtype."""
    params = NeuronParams(decay=0.95, threshold=0.3, reset="subtract")
    x = (torch.rand(200, 2, 64, generator=torch.Generator().manual_seed(0)) * 0.05).to(dtype)
    n, v = multi_spike_multistep(x, params, 31)
    n32, _ = multi_spike_multistep(x.float(), params, 31)
    n64, v64 = multi_spike_multistep(x.double(), params, 31)
    assert n.dtype == v.dtype == dtype and torch.equal(n.float(), n32) and torch.equal(n.double(), n64)
    assert torch.allclose(v.double(), v64, rtol=torch.finfo(dtype).eps, atol=0)  # within one rounding


@pytest.mark.parametrize("kind", ["lif", "synaptic"])
def test_a_half_precision_run_in_pieces_carries_float32_state(kind):
    """bfloat16 steps [0, 5) then [5, 40) inside ``temporal_carry``: the carried membrane (and synaptic current) is
    float32, as the one-spike neurons keep it, and the counts are one call's, which are the float32 run's on the
    same bfloat16 input (the synaptic current rounded to bfloat16 once, as one call rounds it). The state was
    rounded to bfloat16 at every call."""
    params, alpha = NeuronParams(decay=0.9, threshold=0.3, reset="subtract"), 0.6
    neuron = MultiSpikeLIF(params, 31) if kind == "lif" else MultiSpikeSynapticLIF(params, alpha, 31)
    x = (torch.rand(40, 2, 32, generator=torch.Generator().manual_seed(2)) * 0.04).bfloat16()
    whole = neuron(x)
    current = x.float() if kind == "lif" else synaptic_current(x.float(), alpha).bfloat16().float()
    with temporal_carry(neuron):
        pieces = torch.cat([neuron(x[:5]), neuron(x[5:])])
        state = neuron.state if kind == "lif" else neuron.state[0]
        assert state.dtype == torch.float32 and (kind == "lif" or neuron.state[1].dtype == torch.float32)
    assert torch.equal(pieces, whole) and torch.equal(whole.float(), multi_spike_multistep(current, params, 31)[0])
