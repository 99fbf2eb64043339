"""wu2019's voting readout against its docstring formula, computed with plain loops."""

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.readout import SpikeRateReadout
from deepspike.layers.voting import VotingReadout


class Step(nn.Module):
    """A stand-in spiking neuron: ``s_t = [x_t > 0.5]``."""

    def forward(self, x):
        return (x > 0.5).float()


def loop_scores(x, num_classes):
    """``score[b, k] = (1/G) sum_g (1/T) sum_t s_t[b, k G + g]`` with ``s = [x > 0.5]``, one number at a time."""
    t_len, batch, width = x.shape
    g_len = width // num_classes
    out = torch.zeros(batch, num_classes)
    for b in range(batch):
        for k in range(num_classes):
            total = sum(float(x[t, b, k * g_len + g] > 0.5) for t in range(t_len) for g in range(g_len))
            out[b, k] = total / (g_len * t_len)
    return out


@pytest.mark.parametrize("num_classes, group", [(3, 4), (1, 5), (4, 1)])
def test_scores_and_per_step_votes_equal_the_formula_by_loops(num_classes, group):
    x = torch.rand(6, 2, num_classes * group, generator=torch.Generator().manual_seed(num_classes))
    readout = VotingReadout(Step(), num_classes)
    torch.testing.assert_close(readout(x), loop_scores(x, num_classes))
    steps = readout.steps(x)  # [T, B, K]
    assert steps.shape == (6, 2, num_classes)
    torch.testing.assert_close(steps.mean(dim=0), readout(x))
    torch.testing.assert_close(steps[2], loop_scores(x[2:3], num_classes))


def test_an_output_layer_that_cannot_be_split_is_one_config_error_line():
    with pytest.raises(ConfigError, match="^vote: 7 output neurons cannot be split into 3 equal class groups$"):
        VotingReadout(Step(), 3)(torch.rand(2, 1, 7))


@pytest.mark.parametrize("group", [1, 10])
def test_rates_of_bfloat16_spikes_are_exact_counts_over_t(group):
    # Under bfloat16 autocast the output spikes are bfloat16; their rates were averaged in bfloat16 (8 significant
    # bits), which merged neighbouring counts: class 0 with 167 of T * G = 300 spikes and class 1 with 168 both
    # scored 0.55859375 and argmax chose class 0. Reference: the counts divided by T * G in float64.
    steps = 300 // group
    counts = torch.tensor([167, 168, 100])  # spikes per class over all its T * G neuron-steps
    spikes = torch.zeros(steps * group, 1, 3)
    for k, c in enumerate(counts.tolist()):
        spikes[:c, 0, k] = 1.0
    spikes = spikes.reshape(steps, group, 1, 3).permute(0, 2, 3, 1).reshape(steps, 1, 3 * group).bfloat16()
    readout = VotingReadout(nn.Identity(), 3) if group > 1 else SpikeRateReadout(nn.Identity())
    scores = readout(spikes)
    assert torch.allclose(scores.double(), counts.double()[None] / 300, rtol=0, atol=1e-7)
    assert int(scores.argmax(dim=1)) == 1
