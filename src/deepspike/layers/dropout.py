"""Dropout whose mask stays fixed over the time steps of one sample (lee2020's spiking dropout)."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import check_initial_state


class TimeFixedDropout(CarriesState, nn.Module):
    """Inverted dropout on ``[T, B, ...]`` with one mask ``[1, B, ...]`` shared by all T steps.

    ``y_t = x_t * m / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` drawn once per forward call (one training
    iteration), so a dropped neuron is silent for the whole spike train; inside ``neurons.carry.temporal_carry``
    once per block, so time run in pieces keeps one mask. Identity in eval mode.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not (is_finite(p) and 0.0 <= p < 1.0):
            raise ConfigError(f"dropout p must be a number in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = self.carried()
        if keep is None:
            keep = torch.rand((1, *x.shape[1:]), device=x.device) >= self.p  # [1, B, ...]
            self.keep(keep)
        check_initial_state(keep[0], x, "dropout mask")  # carried inside temporal_carry from a batch of another size
        return x * keep.to(x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
