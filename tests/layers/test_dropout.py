"""``TimeFixedDropout``: one mask for all steps of a sample, and its argument check."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.dropout import TimeFixedDropout


def test_one_mask_serves_every_step_and_keeps_the_expected_value():
    torch.manual_seed(0)
    x = torch.ones(5, 200, 8)  # [T, B, N]
    y = TimeFixedDropout(0.25).train()(x)
    assert torch.equal(y, y[:1].expand_as(y))  # the same neurons dropped at every step
    assert set(y.unique().tolist()) == {0.0, torch.tensor(1 / 0.75).item()}  # the kept scaled by 1 / (1 - p)
    assert abs(float((y[0] == 0).float().mean()) - 0.25) < 0.03
    assert torch.equal(TimeFixedDropout(0.25).eval()(x), x)


@pytest.mark.parametrize("p", [1.0, -0.1, float("nan"), "0.5", None])
def test_a_probability_outside_0_to_1_is_one_config_error(p):
    """It was a ValueError (a TypeError for "0.5" and None), which the CLI does not turn into one line."""
    with pytest.raises(ConfigError, match="^dropout p must be a number in \\[0, 1\\), got"):
        TimeFixedDropout(p)


def test_a_batch_of_another_size_inside_temporal_carry_is_one_config_error():
    """The mask [1, 2, 3] kept for the block met a batch of 4: a RuntimeError of the broadcast product."""
    from deepspike.neurons.carry import temporal_carry

    drop = TimeFixedDropout(0.5).train()
    with temporal_carry(drop):
        drop(torch.ones(3, 2, 3))
        with pytest.raises(ConfigError, match=r"^initial dropout mask shape \(2, 3\) does not match one step of the "
                                              r"input \(4, 3\)$"):
            drop(torch.ones(3, 4, 3))
