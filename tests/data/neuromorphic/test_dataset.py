"""``EventFrameDataset`` and ``frame_stats`` on frames ``[N, T, C, H, W]`` and sequences ``[N, T, F]``."""

from __future__ import annotations

import pytest
import torch

from deepspike.core.errors import DataCorruptError
from deepspike.data.neuromorphic import EventFrameDataset, frame_stats


def test_sequences_have_a_per_step_shape_of_features():
    x = torch.randint(0, 5, (6, 4, 3), dtype=torch.uint8)  # [N, T, F]
    ds = EventFrameDataset(x, torch.arange(6) % 2, "seq")
    assert ds.shape == (3,) and ds.timesteps == 4 and len(ds) == 6
    sub = ds.subset(torch.tensor([1, 4]))
    assert isinstance(sub, EventFrameDataset) and torch.equal(sub.x, x[[1, 4]]) and sub.shape == (3,)
    assert ds.to("cpu").shape == (3,) and ds[2][0].dtype == torch.float32
    frames = EventFrameDataset(torch.zeros(2, 3, 2, 4, 5, dtype=torch.uint8), torch.zeros(2))
    assert frames.shape == (2, 4, 5) and frames.timesteps == 3
    for shape in ((2, 3, 4, 5), (2, 3), (2, 3, 1, 1, 1, 1)):
        with pytest.raises(DataCorruptError, match=r"must be \[N, T, C, H, W\] or \[N, T, F\]"):
            EventFrameDataset(torch.zeros(shape), torch.zeros(2))
    with pytest.raises(DataCorruptError, match="2 samples but labels"):
        EventFrameDataset(torch.zeros(2, 3, 4), torch.zeros(3))


@pytest.mark.parametrize("label", [1.7, float("nan")])
def test_labels_that_are_no_whole_numbers_are_refused_not_cut(label):
    """Before: ``y.to(int64)`` made 1.7 a 1 and NaN -2**63 in silence (``TensorDataset`` refused them); whole float
    labels still read as their integers."""
    assert EventFrameDataset(torch.zeros(2, 3, 4), torch.tensor([0.0, 2.0]), "seq").y.tolist() == [0, 2]
    with pytest.raises(DataCorruptError, match=r"^seq: the labels are not all whole numbers"):
        EventFrameDataset(torch.zeros(2, 3, 4), torch.tensor([0.0, label]), "seq")


def test_frame_stats_per_feature_equal_those_of_a_one_pixel_view():
    """Per feature F over N and T: the per-channel statistics of the ``[N, T, F, 1, 1]`` view, bit for bit, also
    across chunks."""
    x = torch.randint(0, 9, (7, 5, 4), dtype=torch.uint8)
    y = torch.zeros(7)
    seq = frame_stats(EventFrameDataset(x, y), chunk=3)
    assert seq == frame_stats(EventFrameDataset(x[:, :, :, None, None], y))
    flat = x.double().permute(2, 0, 1).reshape(4, -1)  # [F, N * T]
    torch.testing.assert_close(torch.tensor(seq[0], dtype=torch.float64), flat.mean(dim=1))
    torch.testing.assert_close(torch.tensor(seq[1], dtype=torch.float64), flat.std(dim=1, unbiased=False))


def test_frame_stats_per_channel_of_camera_frames():
    x = torch.rand(5, 3, 2, 4, 4)
    mean, std = frame_stats(EventFrameDataset(x, torch.zeros(5)), chunk=2)
    per_channel = x.double().permute(2, 0, 1, 3, 4).reshape(2, -1)  # [C, N * T * H * W]
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), per_channel.mean(dim=1))
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), per_channel.std(dim=1, unbiased=False))


def test_frame_stats_of_a_constant_float_feature_are_exactly_that_value_and_0():
    """Unshifted float64 sums over chunks gave this constant feature a std of ~1e-8 (normalize divided by it)."""
    x = torch.rand(13639, 1, 3, generator=torch.Generator().manual_seed(0))  # [N, T, F]
    x[:, :, 2] = 0.7576315999031067
    mean, std = frame_stats(EventFrameDataset(x, torch.zeros(len(x))), chunk=1000)
    assert std[2] == 0.0 and mean[2] == float(x[0, 0, 2])
    torch.testing.assert_close(torch.tensor(std[:2], dtype=torch.float64), x[:, 0, :2].double().std(0, unbiased=False))
