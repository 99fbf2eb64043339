"""Readouts: from the output layer's time series ``[T, B, K]`` to class scores ``[B, K]``.

``steps(x)`` gives the per-step scores ``o_t`` ``[T, B, K]`` whose mean over T is ``forward(x)`` (what a per-step
loss such as TET, ``methods.losses.tet_loss``, scores).
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError


class SpikeRateReadout(nn.Module):
    """Spiking output neurons; score = firing rate ``(1/T) sum_t s_t`` (wu2019's output, in [0, 1])."""

    def __init__(self, neuron: nn.Module) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x).mean(dim=0)  # [T, B, K] -> [B, K]

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """``o_t = s_t``, the output spikes ``[T, B, K]``."""
        return self.neuron(x)


class MembraneReadout(nn.Module):
    """Non-spiking integrator: ``V_T = sum_t decay^(T-t) x_t``; score = ``V_T / T`` (lee2020 with decay 1).

    With ``decay = 1`` this is the mean input current over time, whose derivative w.r.t. each ``x_t``
    is ``1/T``.
    """

    def __init__(self, decay: float = 1.0) -> None:
        super().__init__()
        self.decay = decay

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """``o_t = x_t`` ``[T, B, K]``, the output current of each step (decay 1: their mean is ``forward``)."""
        if self.decay != 1.0:
            raise ConfigError(f"per-step scores need a membrane readout with decay 1, not {self.decay}")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        if self.decay == 1.0:
            return x.mean(dim=0)
        powers = self.decay ** torch.arange(t - 1, -1, -1, dtype=x.dtype, device=x.device)  # [T]
        return torch.tensordot(powers, x, dims=([0], [0])) / t

    def extra_repr(self) -> str:
        return f"decay={self.decay}"
