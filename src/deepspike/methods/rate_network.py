"""A rate-coded classifier: encoder -> spiking body on ``[T, B, ...]`` -> readout -> scores ``[B, K]``."""

from __future__ import annotations

import torch
from torch import nn


class RateNetwork(nn.Module):
    """``scores = readout(body(encoder(x, T)))``.

    x: images ``[B, C, H, W]``; ``encoder(x, T)`` gives the input spike trains (or analog currents)
    ``[T, B, C, H, W]``; the body runs on ``[T, B, ...]``; the readout reduces ``[T, B, K]`` to ``[B, K]``.
    ``timesteps`` is used in training, ``eval_timesteps`` (default: the same) in evaluation; a call may
    pass ``timesteps=`` to override both, e.g. to sweep accuracy against T.
    """

    def __init__(
        self,
        encoder: nn.Module,
        body: nn.Module,
        readout: nn.Module,
        timesteps: int,
        eval_timesteps: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.body = body
        self.readout = readout
        self.timesteps = timesteps
        self.eval_timesteps = eval_timesteps or timesteps

    def forward(self, x: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        steps = timesteps or (self.timesteps if self.training else self.eval_timesteps)
        return self.readout(self.body(self.encoder(x, steps)))
