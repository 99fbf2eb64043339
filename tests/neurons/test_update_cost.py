"""What each neuron's own state update costs per step, against its equation counted by hand."""

import pytest
import torch
from torch import nn

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.neurons import IF, LIF, NeuronParams
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.psn import PSN
from deepspike.neurons.sliding_psn import SlidingPSN
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF
from deepspike.neurons.synaptic import SynapticLIF
from deepspike.neurons.update_cost import kept_sum_ops, membrane_ops, neuron_update_ops, plus, window_taps


def test_the_counting_rule_by_hand():
    assert kept_sum_ops(0.9) == (1, 0)  # k y + x: one product accumulated
    assert kept_sum_ops(1.0) == (0, 1)  # y + x: an addition
    assert kept_sum_ops(0.0) == (0, 0)  # y = x: nothing kept
    assert membrane_ops(0.5) == (1, 1) and membrane_ops(1.0) == (0, 2)  # and the threshold test, an AC
    assert plus((1, 2), (3, 4), (0, 1)) == (4, 7)


LEAKY = NeuronParams(decay=0.5)


@pytest.mark.parametrize("neuron, expected", [
    (LIF(decay=0.5), (1, 1)),                                  # h = k v + x; h >= th
    (IF(), (0, 2)),                                            # h = v + x; h >= th
    (ChunkedIF(), (0, 2)),                                     # sengupta2019's IF
    (ChunkedIF(reset="subtract", signed=True), (0, 5)),        # + h < 0, n > 0 and n = n + s (Li et al. 2022)
    (ChunkedIF(reset="subtract", initial=0.5, weighted=True), (0, 2)),  # v_0 and th * s: no per-step operation
    (LearnableLIF(LEAKY), (2, 1)),                             # PLIF: h = k v + c x, two products
    (LearnableLIF(LEAKY, learn_decay=False), (1, 1)),          # a fixed decay: c = 1
    (AdaptiveLIF(LEAKY), (3, 1)),                              # + theta = th + beta a, a = rho a + s
    (AdaptiveLIF(LEAKY, adapt_decay=1.0, adapt_scale=0.0), (1, 2)),  # beta = 0: no term; rho = 1: a + s, an AC
    (SynapticLIF(LEAKY, syn_decay=0.8), (2, 1)),               # i = alpha i + x, then the LIF
    (SynapticLIF(LEAKY, syn_decay=0.0), (1, 1)),               # alpha = 0: i = x, the plain LIF
    (PSN(6), (6, 1)),                                          # H[t] = sum over the 6 steps of W[t, k] X[k]
    (MaskedPSN(6, order=3), (6, 1)),                           # lambda = 0: the mask lets all 6 steps through
    (SlidingPSN(order=4), (4, 1)),                             # 4 shared taps (a full window)
    (LeakCorrectedLIF(leak=0.99), (1, 1)),                     # lee2020's h = leak v + x
    (SpikingAvgPool(2), (0, 2)),                               # the pooling neuron: h = v + p, no leak
])
def test_each_neuron_counts_its_own_equation(neuron, expected):
    assert neuron.update_ops() == expected


def test_a_masked_psn_costs_its_band_once_trained():
    neuron = MaskedPSN(6, order=3)
    neuron.begin_epoch(4, 5)  # the last of 5 epochs: lambda = 1, the band of 3 taps alone
    # steps 0..5 read 1, 2, 3, 3, 3, 3 inputs (none before step 0): 15 / 6 per step, not 3 (18 / 6)
    assert float(neuron.masking) == 1.0 and neuron.update_ops() == (2.5, 1)
    assert neuron.update_ops(1, 2) == (2.5, 1) and neuron.update_ops(4, 2) == (3, 1)  # steps 1..2, steps 4..5


def test_a_window_of_the_latest_inputs_has_fewer_at_the_first_steps():
    """``min(t + 1, k)`` real inputs at step t, counted by hand: before, ``k`` at every step (and ``k > T`` more)."""
    assert window_taps(3, 0, 4) == (1 + 2 + 3 + 3) / 4 and window_taps(3, 2, 3) == 3
    assert window_taps(10, 0, 4) == (1 + 2 + 3 + 4) / 4 and window_taps(10, 4, 2) == (5 + 6) / 2
    assert window_taps(1, 0, 5) == 1 and window_taps(4, 7, 0) == 0
    sliding = SlidingPSN(order=3)
    assert neuron_update_ops(sliding, 0, 4) == (2.25, 1) and neuron_update_ops(sliding) == (3, 1)
    assert neuron_update_ops(LIF(decay=0.5), 0, 4) == (1, 1)  # a neuron whose cost is the same at every step


@pytest.mark.parametrize("pieces", [[4], [2, 2], [1, 1, 1, 1]])
def test_the_recorder_prices_a_sliding_psn_by_its_real_inputs(pieces):
    """Order 3 over 4 steps, 2 samples x 5 neurons: (1 + 2 + 3 + 3) x 10 = 90 MACs, whole or in pieces (120 before)."""
    neuron = SlidingPSN(order=3)
    x = torch.rand(4, 2, 5, generator=torch.Generator().manual_seed(0))
    net = nn.Sequential(neuron)  # the pass is the net's: its neuron runs the pieces (as a recurrent layer's loop)
    recorder = ActivityRecorder(net, codings=("rate",), operations=False)
    with torch.no_grad(), recorder, recorder.network_pass(2), temporal_carry(neuron):
        for part in x.split(pieces):
            neuron(part)
    (record,) = recorder.layers.values()
    assert (record.update_macs, record.update_acs) == (90, 40)


@pytest.mark.parametrize("synaptic", [False, True])
def test_per_neuron_constants_price_each_neuron_by_its_own_decays(synaptic):
    """The mean over the neurons of what the one-value-per-layer neuron of each neuron's constants costs: an IF neuron
    (k = 1) or one with alpha = 0 among leaky ones is priced as itself. Before, any mix priced a product for every
    neuron: (1, 1) instead of (0.75, 1.25) here, (2, 1) instead of (1.25, 1.5) with the synaptic decays."""
    decay = torch.tensor([1.0, 0.5, 0.8, 0.9])
    alpha = torch.tensor([0.0, 0.3, 1.0, 0.3]) if synaptic else None
    neuron = HeterogeneousLIF(NeuronParams(), decay, torch.ones(4), alpha)
    each = [SynapticLIF(NeuronParams(decay=float(k)), syn_decay=float(a)) if synaptic else
            LIF(decay=float(k)) for k, a in zip(decay, alpha if synaptic else decay, strict=True)]
    expected = tuple(sum(m.update_ops()[i] for m in each) / 4 for i in (0, 1))
    assert expected == ((1.25, 1.5) if synaptic else (0.75, 1.25))  # counted by hand
    assert neuron.update_ops() == expected
    per_channel = HeterogeneousLIF(NeuronParams(), decay.reshape(4, 1), torch.ones(1), None)  # [4, 1] of [4, 3]
    assert per_channel.update_ops() == (0.75, 1.25)
    for k, ops in ((0.5, (1, 1)), (1.0, (0, 2)), (0.0, (0, 1))):  # one decay everywhere: as LIF / IF
        assert HeterogeneousLIF(NeuronParams(), torch.full((3,), k), torch.ones(3)).update_ops() == ops
