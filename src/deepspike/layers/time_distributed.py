"""Run a stateless layer on all time steps at once."""

from __future__ import annotations

import torch
from torch import nn


class TimeDistributed(nn.Module):
    """Apply ``module`` to ``[T, B, ...]`` as one ``[T*B, ...]`` batch (a view, no copy when contiguous).

    Convolutions, linear layers and pooling have no state across time, so running them once on the
    flattened batch is exact and does the ANN's work T times in one call.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = self.module(x.flatten(0, 1))  # [T*B, ...]
        return y.unflatten(0, (t, b))  # [T, B, ...]
