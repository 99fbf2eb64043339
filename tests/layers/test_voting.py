"""wu2019's voting readout against its docstring formula, computed with plain loops."""

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
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
