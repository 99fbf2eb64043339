"""``EventFrameDataset``: frames held in memory as ``[N, T, *step]``, a step being ``(C, H, W)`` or ``(F,)``."""

from __future__ import annotations

import torch

from deepspike.core.errors import DataCorruptError
from deepspike.data.splits import axis_stats
from deepspike.data.tensor_dataset import check_whole_labels


class EventFrameDataset:
    """Frames ``x`` ``[N, T, C, H, W]`` (camera events) or ``[N, T, F]`` (sequences: SHD/SSC, image rows), ``uint8``
    counts or float, and labels ``y`` int64 ``[N]``.

    The same interface as :class:`deepspike.data.TensorDataset` (``x``, ``y``, ``subset``, ``to``,
    ``shape``, ``in_memory``), so :class:`BatchIterator` gathers ``x[idx]`` ``[B, T, *step]`` and casts the
    batch to float32 on the way (``uint8`` frames stay at one byte per value in memory). ``shape`` is the per-step
    ``(C, H, W)`` or ``(F,)``: what the network's first layer sees at each of the T steps (``encoder: frames``).
    """

    in_memory = True

    def __init__(self, x: torch.Tensor, y: torch.Tensor, name: str = "events"):
        if x.dim() not in (3, 5):
            raise DataCorruptError(f"{name}: event frames must be [N, T, C, H, W] or [N, T, F], "
                                   f"got shape {tuple(x.shape)}")
        if y.dim() != 1 or len(y) != len(x):
            raise DataCorruptError(f"{name}: {len(x)} samples but labels of shape {tuple(y.shape)}")
        check_whole_labels(y, f"{name}: the labels")  # the int64 cast cut 1.7 to 1, as TensorDataset's did
        self.x = x
        self.y = y.to(torch.int64)
        self.name = name

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx):
        return self.x[idx].float(), self.y[idx]

    def subset(self, idx: torch.Tensor) -> EventFrameDataset:
        """A new data set holding rows ``idx`` (a copy)."""
        return EventFrameDataset(self.x[idx], self.y[idx], self.name)

    def to(self, device) -> EventFrameDataset:
        """The same frames on ``device``."""
        return EventFrameDataset(self.x.to(device), self.y.to(device), self.name)

    @property
    def timesteps(self) -> int:
        """Frames per sample T."""
        return int(self.x.shape[1])

    @property
    def shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` or ``(F,)`` of one time step."""
        return tuple(self.x.shape[2:])

    def __repr__(self) -> str:
        return f"EventFrameDataset(n={len(self)}, T={self.timesteps}, shape={self.shape})"


FRAME_STATS_CHUNK = 2048  # samples a chunk of frame_stats (fewer for large samples: splits.stats_rows)


def frame_stats(dataset: EventFrameDataset,
                chunk: int = FRAME_STATS_CHUNK) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of the frames ``x [N, T, C, H, W]`` per channel C (over N, T, H, W), or of ``x [N, T, F]`` per
    feature F (over N, T): per entry of dim 2, over every other dim (:func:`deepspike.data.splits.axis_stats`:
    float64 sums over chunks of samples, a constant channel's std exactly 0)."""
    return axis_stats(dataset.x, 2, chunk)
