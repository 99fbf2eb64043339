"""``xylosim``: Xylo's integer dynamics as XyloSim runs them, against traces computed by hand from XyloSim's rules
(``XyloLayer::evolve``: input, then last step's hidden spikes, then the neurons; ``XyloIAFNeuron::evolve``)."""

from __future__ import annotations

import types

import numpy as np
import torch

from deepspike.deploy.xylosim import XyloChip, bitshift_decay, chip_config, deliver, neuron_step, xylo_simulate
from deepspike.layers.voting import VotingReadout


def _spec() -> dict:
    """2 inputs, 2 hidden, 1 output, ``[source, target]`` weights (Rockpool's synapse axis on the first two)."""
    return {"weights_in": np.array([[10, 0], [4, -6]])[..., None], "weights_rec": np.array([[0, 3], [0, 0]])[..., None],
            "weights_out": np.array([[7], [20]]), "threshold": np.array([8, 5]), "threshold_out": np.array([3]),
            "bias": np.array([0, 1]), "bias_out": np.array([0]), "dash_mem": np.array([1, 1]),
            "dash_mem_out": np.array([2]), "dash_syn": np.array([1, 1]), "dash_syn_2": np.array([0, 0]),
            "dash_syn_out": np.array([1])}


def _config(**changes) -> dict:
    return chip_config({**_spec(), **changes})


def test_a_tiny_net_spikes_as_traced_by_hand():
    """By hand (i: current, v: membrane; d(x) = x >> dash or sign(x) where that is 0):
    t0: i_h = [10, 0] -> decayed [5, 0]; v_h = [5, 0 + bias 1 = 1]; no spikes.
    t1: i_h = [5 + 20 + 4, -6] -> [15, -3]; v0 = 5 - d(5) 2 + 15 = 18 >= 8: 2 spikes, v0 = 2;
        v1 = 1 - d(1) 1 - 3 + 1 = -2.
    t2: last step's 2 spikes of hidden 0: i_h = [15, -3 + 2*3 = 3] -> [8, 2]; v0 = 2 - 1 + 8 = 9: 1 spike, v0 = 1;
        v1 = -2 - d(-2) (-1) + 2 + 1 = 2; output i = 2*7 = 14 -> 7, v = 7 >= 3: 7 // 3 = 2 spikes, clipped to 1, v = 4.
    t3: i_h = [8, 2 + 3] -> [4, 3]; v0 = 1 - 1 + 4 = 4; v1 = 2 - 1 + 3 + 1 = 5 >= 5: 1 spike, v1 = 0;
        output i = 7 + 7 = 14 -> 7, v = 4 - d(4 >> 2 = 1) + 7 = 10: 1 spike."""
    x = torch.tensor([[1, 0], [2, 1], [0, 0], [0, 0]])[:, None].float()  # [T, B = 1, I]
    hidden, out = xylo_simulate(_config(), x)
    assert hidden[:, 0].tolist() == [[0, 0], [2, 0], [1, 0], [0, 1]]
    assert out[:, 0, 0].tolist() == [0, 0, 1, 1]


def test_dash_syn_0_keeps_every_input_from_the_membrane():
    """``i -= i >> 0`` clears the current before it reaches the membrane: no spike however strong the input."""
    hidden, out = xylo_simulate(_config(dash_syn=np.array([0, 0]), bias=np.array([0, 0])), torch.full((6, 1, 2), 9.0))
    assert not hidden.any() and not out.any()


def test_input_counts_are_clipped_at_15_and_batched():
    """Counts 15 and 40 (clipped to 15) give the same spikes; a batch of the two equals each alone."""
    x = torch.tensor([[[15.0, 0.0]], [[40.0, 0.0]]]).expand(2, 2, 2).transpose(0, 1).contiguous()  # [T=2, B=2, 2]
    hidden, out = xylo_simulate(_config(), x)
    assert torch.equal(hidden[:, 0], hidden[:, 1]) and torch.equal(out[:, 0], out[:, 1]) and hidden.any()
    alone = xylo_simulate(_config(), x[:, :1])[0]
    assert torch.equal(alone[:, 0], hidden[:, 0])
    floored = xylo_simulate(_config(), torch.tensor([[[1.9, 2.6]]]))[0]  # uint8 counts: floor, 1 and 2 (not 2 and 3)
    assert torch.equal(floored, xylo_simulate(_config(), torch.tensor([[[1.0, 2.0]]]))[0])
    assert not torch.equal(floored, xylo_simulate(_config(), torch.tensor([[[2.0, 3.0]]]))[0])


def test_bitshift_decay_floors_and_removes_at_least_one():
    x = torch.tensor([5, 1, 0, -1, -3, -4])
    assert bitshift_decay(x, torch.tensor(1)).tolist() == [2, 1, 0, -1, -2, -2]


def test_the_membrane_saturates_at_int16_before_the_spike_test():
    """``v <- sat(v + dv)``: v = 30000, current 20000 (dash_syn 1: 20000 - 10000 = 10000), dash_mem 15 (30000 >> 15 =
    0: the decay removes 1), bias 0: dv = 9999, v = sat(39999) = 32767 = th: one spike, v = 0 (unsaturated, 39999
    left 7232 after the spike)."""
    one = torch.ones(1, 1, dtype=torch.int64)
    i, v, n = neuron_step(20000 * one, 30000 * one, torch.tensor([32767]), torch.tensor([0]), torch.tensor([15]),
                          torch.tensor([1]), 31)
    assert (i.item(), v.item(), n.item()) == (10000, 0, 1)


def test_delivery_saturates_spike_by_spike_in_source_order():
    """Source 0 (+127 x 31 spikes) then source 1 (-127 x 31): from 30000, 30000 + 3937 saturates at 32767, then
    32767 - 3937 = 28830 (one sum would give 30000)."""
    i = deliver(torch.tensor([[30000]]), torch.tensor([[31, 31]]), torch.tensor([[127], [-127]]))
    assert i.item() == 32767 - 31 * 127 == 28830


class _Frames(torch.nn.Module):
    """An encoder of ``[B, T, I]`` frames: ``[T, B, I]`` (the steps argument as RateNetwork passes it)."""

    def forward(self, x, steps):
        assert steps == 4
        return x.transpose(0, 1)


def test_the_chip_classifier_scores_output_spike_rates_of_the_encoded_input():
    """``XyloChip``: the model's encoder at its eval_timesteps, then the traced net: output spikes [0, 0, 1, 1] give
    a rate 0.5; an imported NIR net (``takes_coded_input``) takes ``[T, B, I]`` as it is."""
    q = _spec()
    frames = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 0.0], [0.0, 0.0]])[None]  # [B = 1, T, I]
    model = types.SimpleNamespace(encoder=_Frames(), eval_timesteps=4)
    assert XyloChip(model, q)(frames).tolist() == [[0.5]]
    imported = types.SimpleNamespace(takes_coded_input=True, eval_timesteps=None)
    assert XyloChip(imported, q)(frames.transpose(0, 1)).tolist() == [[0.5]]


def test_the_chip_classifier_averages_a_voting_readout_s_groups():
    """``vote_group`` G: K * G output neurons, class k scoring its group's mean rate; the chip's scores were the
    K * G neurons' rates, whose argmax (a neuron, not a class) scored a tiny digits run 0.15 (float 0.71). Output 0
    spikes at steps 2 and 3 (rate 0.5), output 1 never: one class of two voters scores 0.25."""
    q = {**_spec(), "weights_out": np.array([[7, 0], [20, 0]]), "threshold_out": np.array([3, 3]),
         "bias_out": np.array([0, 0]), "dash_mem_out": np.array([2, 2]), "dash_syn_out": np.array([1, 1])}
    frames = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 0.0], [0.0, 0.0]])[None]  # [B = 1, T, I]
    plain = types.SimpleNamespace(encoder=_Frames(), eval_timesteps=4)
    assert XyloChip(plain, q)(frames).tolist() == [[0.5, 0.0]]
    voting = types.SimpleNamespace(encoder=_Frames(), eval_timesteps=4, readout=VotingReadout(torch.nn.Identity(), 1))
    assert XyloChip(voting, q)(frames).tolist() == [[0.25]]
