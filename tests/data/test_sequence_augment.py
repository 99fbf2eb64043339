"""Channel shifts and time / channel masks of sequence batches against hand-worked shifts and the band law (the
exact resume of an SHD run with them: ``tests/training/test_sequence_runs.py``)."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.data import Augment
from deepspike.data import sequence_augment as sa


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shift_channels_hand_worked():
    x = torch.arange(1.0, 7.0).view(1, 1, 6).repeat(3, 2, 1)  # [B=3, T=2, F=6]
    out = sa.shift_channels(x, torch.tensor([2, -1, 0]))
    assert out[0, 0].tolist() == [0, 0, 1, 2, 3, 4]
    assert out[1, 1].tolist() == [2, 3, 4, 5, 6, 0]
    assert torch.equal(out[2], x[2])


def test_random_channel_shift_is_one_shift_per_sample_with_zeros_coming_in():
    x = torch.rand(50, 4, 9) + 0.1
    out = sa.random_channel_shift(x, 3, _gen(1))
    seen = set()
    for b in range(50):
        matches = [s for s in range(-3, 4) if torch.equal(out[b], sa.shift_channels(x[b:b + 1], torch.tensor([s]))[0])]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(range(-3, 4))


@pytest.mark.parametrize("axis", ["time", "channel"])
def test_masks_zero_one_band_of_at_most_the_width(axis):
    x = torch.rand(400, 10, 12) + 0.1  # no zeros of its own
    op = sa.random_time_mask if axis == "time" else sa.random_channel_mask
    out = op(x, 4, _gen(2))
    widths, starts = set(), set()
    for b in range(400):
        zero = out[b] == 0  # [T, F]
        line = zero.all(1) if axis == "time" else zero.all(0)  # the masked steps / channels
        assert torch.equal(zero, line[:, None].expand_as(zero) if axis == "time" else line[None, :].expand_as(zero))
        where = line.nonzero().flatten()
        if len(where):
            assert int(where[-1] - where[0] + 1) == len(where)  # one contiguous band
            starts.add(int(where[0]))
        widths.add(len(where))
        assert torch.equal(out[b][~zero], x[b][~zero])
    assert widths == {0, 1, 2, 3, 4}
    assert min(starts) == 0 and max(starts) == (9 if axis == "time" else 11)  # bands reach both ends


def test_sequence_ops_refuse_pictures_and_check_their_settings():
    with pytest.raises(ConfigError, match=r"data.augment.time_mask needs sequences \[B, T, F\], got a batch of shape"):
        sa.random_time_mask(torch.zeros(2, 3, 4, 4), 2, _gen())
    with pytest.raises(ConfigError, match="augment.channel_mask must be an integer from 0 to 65536, got -1"):
        Augment(channel_mask=-1)
    with pytest.raises(ConfigError, match="augment.channel_shift must be an integer from 0 to 65536"):
        Augment(channel_shift=2**63 - 1)
    assert not Augment(time_mask=2).is_identity and Augment(time_mask=2).on_sequences



def test_shifts_and_masks_leave_zeros_not_nan_where_an_inf_was():
    x = torch.zeros(30, 6, 8)
    x[:, :, 0] = float("inf")
    for out in (sa.random_channel_shift(x, 2, _gen(3)), sa.random_time_mask(x, 3, _gen(3)),
                sa.random_channel_mask(x, 3, _gen(3))):
        assert not torch.isnan(out).any()
