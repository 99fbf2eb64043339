"""Run a stateless layer on all time steps at once."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.coding.rate import direct, time_invariant
from deepspike.layers.lean_avg_pool import LeanAvgPool2d

# Layers whose output for one step depends on that step's input alone, with no state, randomness or batch
# statistics: a time-invariant input gives a time-invariant output.
_PER_STEP = (nn.Conv2d, nn.Linear, nn.AvgPool2d, LeanAvgPool2d, nn.MaxPool2d, nn.Flatten, nn.Identity)


class TimeDistributed(nn.Module):
    """Apply ``module`` to ``[T, B, ...]`` as one ``[T*B, ...]`` batch (a view, no copy when contiguous).

    Convolutions, linear layers and pooling have no state across time, so running them once on the
    flattened batch is exact and does the ANN's work T times in one call.

    A time-invariant input (``coding.time_invariant``: direct encoding feeds the same image at every step as a
    stride-0 view) through such a layer (``_PER_STEP``; batch-norm only in eval mode) runs the layer once on
    ``[B, ...]`` and returns its output expanded over T (again stride 0): the same values, T times less work
    and memory; autograd sums the gradient over T before the layer's backward. Not done while the layer has
    forward hooks (the analysis monitors count a layer's work per call and per step).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def _runs_once(self, x: torch.Tensor) -> bool:
        m = self.module
        per_step = isinstance(m, _PER_STEP) or (isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.training)
        return per_step and time_invariant(x) and not (m._forward_hooks or m._forward_pre_hooks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        if self._runs_once(x):
            return direct(self.module(x[0]), t)  # [B, ...] -> [T, B, ...], stride 0 in T
        y = self.module(x.flatten(0, 1))  # [T*B, ...]
        return y.unflatten(0, (t, b))  # [T, B, ...]
