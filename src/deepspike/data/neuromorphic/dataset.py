"""``EventFrameDataset``: event frames held in memory as ``uint8`` ``[N, T, C, H, W]``."""

from __future__ import annotations

import torch

from deepspike.core.errors import DataCorruptError


class EventFrameDataset:
    """Frames ``x`` ``[N, T, C, H, W]`` (``uint8`` counts, or float) and labels ``y`` int64 ``[N]``.

    The same interface as :class:`deepspike.data.TensorDataset` (``x``, ``y``, ``subset``, ``to``,
    ``shape``, ``in_memory``), so :class:`BatchIterator` gathers ``x[idx]`` ``[B, T, C, H, W]`` and casts the
    batch to float32 on the way (memory stays at one byte per frame pixel). ``shape`` is the per-step
    ``(C, H, W)``: what the network's first layer sees at each of the T steps (stbp ``encoder: frames``).
    """

    in_memory = True

    def __init__(self, x: torch.Tensor, y: torch.Tensor, name: str = "events"):
        if x.dim() != 5:
            raise DataCorruptError(f"{name}: event frames must be [N, T, C, H, W], got shape {tuple(x.shape)}")
        if y.dim() != 1 or len(y) != len(x):
            raise DataCorruptError(f"{name}: {len(x)} samples but labels of shape {tuple(y.shape)}")
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
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one time step."""
        return tuple(self.x.shape[2:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"EventFrameDataset(n={len(self)}, T={self.timesteps}, shape={self.shape})"


def frame_stats(dataset: EventFrameDataset, chunk: int = 2048) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the frames over N, T, H, W (float64 sums over chunks)."""
    x = dataset.x
    c = x.shape[2]
    s1 = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].double()  # [chunk, T, C, H, W]
        s1 += part.sum(dim=(0, 1, 3, 4))
        s2 += part.square().sum(dim=(0, 1, 3, 4))
    count = max(1, x.shape[0] * x.shape[1] * x.shape[3] * x.shape[4])
    mean = s1 / count
    std = (s2 / count - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
