"""Readouts: from the output layer's time series ``[T, B, K]`` to class scores ``[B, K]``."""

from __future__ import annotations

import torch
from torch import nn


class SpikeRateReadout(nn.Module):
    """Spiking output neurons; score = firing rate ``(1/T) sum_t s_t`` (wu2019's output, in [0, 1])."""

    def __init__(self, neuron: nn.Module) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x).mean(dim=0)  # [T, B, K] -> [B, K]


class MembraneReadout(nn.Module):
    """Non-spiking integrator: ``V_T = sum_t decay^(T-t) x_t``; score = ``V_T / T`` (lee2020 with decay 1).

    With ``decay = 1`` this is the mean input current over time, whose derivative w.r.t. each ``x_t``
    is ``1/T``.
    """

    def __init__(self, decay: float = 1.0) -> None:
        super().__init__()
        self.decay = decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        if self.decay == 1.0:
            return x.mean(dim=0)
        powers = self.decay ** torch.arange(t - 1, -1, -1, dtype=x.dtype, device=x.device)  # [T]
        return torch.tensordot(powers, x, dims=([0], [0])) / t

    def extra_repr(self) -> str:
        return f"decay={self.decay}"
