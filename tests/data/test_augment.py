"""Batch augmentation on hand-made tensors: crop shifts, flips, normalisation, determinism."""

from types import SimpleNamespace

import pytest
import torch
from sklearn.preprocessing import StandardScaler

from deepspike.core.errors import ConfigError
from deepspike.data import Augment, as_augment, channel_stats, normalize, random_crop, random_hflip, shift_crop

X = torch.arange(1.0, 10.0).view(1, 1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_shift_crop_hand_computed():
    one = torch.tensor([0])
    # offset (0, 0) of the 1-padded image: the picture moves one pixel down and right
    assert shift_crop(X, one * 0, one * 0, 1).view(3, 3).tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    # offset (2, 2): moves up and left
    assert shift_crop(X, one + 2, one + 2, 1).view(3, 3).tolist() == [[5, 6, 0], [8, 9, 0], [0, 0, 0]]
    # offset (padding, padding) is the identity; (2, 0) moves up and right
    assert torch.equal(shift_crop(X, one + 1, one + 1, 1), X)
    assert shift_crop(X, one + 2, one * 0, 1).view(3, 3).tolist() == [[0, 4, 5], [0, 7, 8], [0, 0, 0]]


def test_shift_crop_per_sample_and_channel():
    x = torch.stack([X[0], X[0] * 10])  # [2, 1, 3, 3]
    x = torch.cat([x, -x], dim=1)  # [2, 2, 3, 3]: channel 1 is the negative of channel 0
    out = shift_crop(x, torch.tensor([0, 2]), torch.tensor([1, 1]), 1)
    assert out[0, 0].tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]  # down by one
    assert out[1, 0].tolist() == [[40, 50, 60], [70, 80, 90], [0, 0, 0]]  # up by one
    assert torch.equal(out[:, 1], -out[:, 0])


def brute_shift(img: torch.Tensor, dy: int, dx: int, p: int) -> torch.Tensor:
    """Reference with explicit loops: out[i, j] = img[i + dy - p, j + dx - p] or 0 outside."""
    c, h, w = img.shape
    out = torch.zeros_like(img)
    for i in range(h):
        for j in range(w):
            si, sj = i + dy - p, j + dx - p
            if 0 <= si < h and 0 <= sj < w:
                out[:, i, j] = img[:, si, sj]
    return out


def test_random_crop_every_output_is_a_valid_shift_and_all_shifts_occur():
    torch.manual_seed(0)
    x = torch.rand(64, 2, 5, 4) + 0.1  # strictly positive, so zeros only come from padding
    p = 2
    out = random_crop(x, p, torch.Generator().manual_seed(7))
    seen = set()
    for b in range(len(x)):
        matches = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                   if torch.equal(out[b], brute_shift(x[b], dy, dx, p))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 20  # of the 25 offsets, with 64 draws
    again = random_crop(x, p, torch.Generator().manual_seed(7))
    assert torch.equal(out, again)
    assert not torch.equal(out, random_crop(x, p, torch.Generator().manual_seed(8)))
    assert random_crop(x, 0, torch.Generator()) is x


def test_random_hflip_each_image_flipped_or_not():
    x = torch.arange(6.0).view(1, 1, 2, 3).repeat(200, 1, 1, 1)
    flipped = torch.tensor([[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]])
    out = random_hflip(x, torch.Generator().manual_seed(1))
    is_flipped = torch.tensor([torch.equal(o[0], flipped) for o in out])
    is_same = torch.tensor([torch.equal(o[0], x[0, 0]) for o in out])
    assert torch.all(is_flipped ^ is_same)
    assert 70 < is_flipped.sum() < 130  # p = 0.5 over 200 images
    assert torch.equal(out, random_hflip(x, torch.Generator().manual_seed(1)))


def test_augment_combines_and_converts():
    x = torch.rand(8, 3, 4, 4)
    aug = Augment(crop_padding=1, hflip=True)
    a = aug(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    b = random_hflip(random_crop(x, 1, g), g)  # same draws in the same order
    assert torch.equal(a, b)
    assert as_augment(None) is None
    assert as_augment({"crop_padding": 0, "hflip": False}) is None  # identity -> nothing to do
    assert as_augment({"crop_padding": 2}) == Augment(2, False)
    assert as_augment(SimpleNamespace(crop_padding=4, hflip=True)) == Augment(4, True)  # the recipe's config

    def fn(x, g):
        return x

    assert as_augment(fn) is fn
    with pytest.raises(ConfigError, match="crop_pad"):
        as_augment({"crop_pad": 2})
    with pytest.raises(ConfigError):
        Augment(crop_padding=-1)


def test_normalize_hand_computed():
    x = torch.tensor([[[[1.0, 3.0]], [[0.5, 0.0]]]])  # [1, 2, 1, 2]
    out = normalize(x, (1.0, 0.5), (2.0, 0.25))
    # channel 0: (1 - 1)/2 = 0, (3 - 1)/2 = 1; channel 1: (0.5 - 0.5)/0.25 = 0, (0 - 0.5)/0.25 = -2
    assert out.tolist() == [[[[0.0, 1.0]], [[0.0, -2.0]]]]
    with pytest.raises(ConfigError, match="channels"):
        normalize(x, (0.0,), (1.0,))


def test_normalize_frame_sequences_per_step_channel():
    """``[B, T, C, H, W]`` per channel C and ``[B, T, F]`` per feature F (axis 2, as ``frame_stats``)."""
    x = torch.rand(3, 4, 2, 5, 5)
    out = normalize(x, (0.5, 0.25), (2.0, 4.0))
    torch.testing.assert_close(out[:, :, 0], (x[:, :, 0] - 0.5) / 2.0)
    torch.testing.assert_close(out[:, :, 1], (x[:, :, 1] - 0.25) / 4.0)
    rows = torch.rand(2, 3, 4)  # [B, T, F]
    mean, std = torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([1.0, 2.0, 0.5, 4.0])
    torch.testing.assert_close(normalize(rows, mean, std), (rows - mean) / std)
    with pytest.raises(ConfigError, match="normalize: 4 channels but mean/std of length 3/3"):
        normalize(rows, (0.0,) * 3, (1.0,) * 3)


def test_a_channel_constant_in_the_training_split_is_only_centred_as_sklearns_standard_scaler_does():
    """std 0 (e.g. an image column or SHD channel that never changes in the training split): scale 1, not 1e12."""
    train = torch.rand(50, 3, 1, 1).double()
    train[:, 1] = 0.25  # constant channel
    scaler = StandardScaler().fit(train.flatten(1).numpy())  # [N, C]
    mean, std = channel_stats(train)
    assert std[1] == 0.0
    test = torch.rand(7, 3, 1, 1).double()
    expected = torch.from_numpy(scaler.transform(test.flatten(1).numpy())).view(7, 3, 1, 1)
    torch.testing.assert_close(normalize(test, mean, std), expected)
    assert normalize(test, mean, std)[:, 1].abs().max() < 1  # was ~7e11: (x - 0.25) / 1e-12


@pytest.mark.parametrize("mean, std", [((0.5,), (float("nan"),)), ((0.5,), (-1.0,)), ((float("inf"),), (1.0,)),
                                       ((float("nan"),), (1.0,)), (torch.tensor([0.0]), torch.tensor([-2.0]))])
def test_normalize_refuses_non_finite_statistics_and_negative_std_in_one_line(mean, std):
    """A NaN std gave NaN inputs; a negative one was silently clamped to 1e-12."""
    with pytest.raises(ConfigError, match=r"^normalize: channel 0 has mean .* the std a finite number >= 0$"):
        normalize(torch.ones(2, 1, 2, 2), mean, std)


@pytest.mark.parametrize("name", ["crop_padding", "roll", "cutout", "channel_shift", "time_mask", "channel_mask"])
def test_a_fractional_size_is_one_config_error_line(name):
    """Before: ``Augment(crop_padding=2.5)`` (or a dict with it) was accepted, and the first batch crashed in
    ``torch.randint`` (TypeError, a multi-line list of signatures); ``cutout=2.5`` zeroed a 2 x 2 square."""
    with pytest.raises(ConfigError, match=f"^augment.{name} must be an integer from 0 to 65536, got 2.5$"):
        as_augment({name: 2.5})
