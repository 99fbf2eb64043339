"""A data set held as two tensors in memory: images ``x`` and labels ``y``."""

from __future__ import annotations

import torch

from deepspike.core.errors import DataCorruptError


def check_whole_labels(y: torch.Tensor, what: str) -> None:
    """A one-line ``DataCorruptError`` starting with ``what`` when floating-point labels ``y [N]`` are not all finite
    whole numbers (a cast to int64 truncated 1.7 to 1 and turned NaN into -2**63)."""
    if y.is_floating_point() and not (torch.isfinite(y).all() and torch.equal(y, y.round())):
        raise DataCorruptError(f"{what} are not all whole numbers (class indices)")


class TensorDataset:
    """Images ``x`` float32 ``[N, C, H, W]`` in [0, 1] and labels ``y`` int64 ``[N]``.

    Indexing with an index tensor ``idx [B]`` returns the batch ``(x[idx] [B, C, H, W], y[idx] [B])`` with
    one gather, no Python loop over samples. ``in_memory`` is True (streaming data sets say False).
    """

    in_memory = True

    def __init__(self, x: torch.Tensor, y: torch.Tensor, name: str = "data"):
        if x.dim() != 4:
            raise DataCorruptError(f"{name}: images must be [N, C, H, W], got shape {tuple(x.shape)}")
        if y.dim() != 1 or len(y) != len(x):
            raise DataCorruptError(f"{name}: {len(x)} images but labels of shape {tuple(y.shape)}")
        check_whole_labels(y, f"{name}: the labels")
        self.x = x.to(torch.float32)
        self.y = y.to(torch.int64)

    def __len__(self) -> int:
        """Number of samples N."""
        return len(self.y)

    def __getitem__(self, idx: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx], self.y[idx]

    def subset(self, idx: torch.Tensor) -> TensorDataset:
        """A new data set holding rows ``idx`` (a copy)."""
        return TensorDataset(self.x[idx], self.y[idx])

    def to(self, device: torch.device | str) -> TensorDataset:
        """The same data on ``device`` (e.g. to keep a small data set on the GPU for the whole run)."""
        return TensorDataset(self.x.to(device), self.y.to(device))

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one sample."""
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"TensorDataset(n={len(self)}, shape={self.shape})"

