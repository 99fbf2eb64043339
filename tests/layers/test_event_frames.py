"""Event frames and sequences as a rate network's input (``layers.event_frames``): the first T steps, time-first,
and one-line refusals of a T the samples cannot give."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import DeltaEncoder, FrameEncoder, first_steps
from deepspike.layers.population_encoder import PopulationEncoder


def test_first_steps_are_the_samples_first_frames_time_first():
    seq = torch.rand(2, 6, 5)  # [B, T', F]
    out = FrameEncoder()(seq, 4)
    assert out.shape == (4, 2, 5) and all(torch.equal(out[t], seq[:, t]) for t in range(4))
    frames = torch.rand(1, 3, 2, 3, 5)  # [B = 1, T', C, H, W], odd sizes
    assert torch.equal(first_steps(frames, 1, "frames"), frames[:, :1].transpose(0, 1))


@pytest.mark.parametrize("steps", [0, -2, 2.0, True])
def test_a_number_of_steps_that_is_no_integer_from_one_is_refused(steps):
    # T = -2 gave all but the last two frames (4 of 6), T = 0 an empty series, T = 2.0 torch's slicing TypeError
    seq = torch.rand(2, 6, 5)
    for encoder in (FrameEncoder(), DeltaEncoder(0.1), PopulationEncoder(3)):
        with pytest.raises(ConfigError, match=rf"^number of time steps T={steps!r} must be an integer >= 1$"):
            encoder(seq, steps)
