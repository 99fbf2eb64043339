"""``SpikeDelay``: a hidden layer's spikes one step late, ``out[0] = 0``, ``out[t] = s[t - 1]`` (Xylo's timing)."""

from __future__ import annotations

import pytest
import torch

from deepspike.layers.spike_delay import SpikeDelay


def test_spikes_are_shifted_one_step_along_time_by_hand():
    """s [T = 3, B = 2, 2]: step 0 of the output is silent, steps 1 and 2 are the input's 0 and 1 (its step 2 is
    dropped); the gradient flows back to the step each output came from."""
    s = torch.tensor([[[1., 0.], [0., 1.]], [[1., 1.], [0., 0.]], [[0., 1.], [1., 0.]]], requires_grad=True)
    out = SpikeDelay()(s)
    assert out.tolist() == [[[0., 0.], [0., 0.]], [[1., 0.], [0., 1.]], [[1., 1.], [0., 0.]]]
    out.backward(torch.arange(12.).reshape(3, 2, 2))
    assert s.grad.tolist() == [[[4., 5.], [6., 7.]], [[8., 9.], [10., 11.]], [[0., 0.], [0., 0.]]]


def test_a_tensor_without_a_time_axis_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^SpikeDelay takes time-first spikes \[T, B, \.\.\.\], got shape \[4\]$"):
        SpikeDelay()(torch.ones(4))
