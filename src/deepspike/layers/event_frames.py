"""Event frames as the input of a rate network (wu2019's encoding layer on neuromorphic data)."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError


class FrameEncoder(nn.Module):
    """Sample-first event frames ``[B, T', C, H, W]`` -> time-first ``[T, B, C, H, W]``; sequences ``[B, T', F]``
    (one feature vector per step, e.g. SHD's 700 channels) -> ``[T, B, F]`` alike.

    The first ``T`` frames are used (``T <= T'``), so training and inference T can still differ; a request
    for more steps than the sample has frames raises ``ConfigError``.
    """

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        if x.dim() not in (3, 5):
            raise ConfigError(f"encoder 'frames' needs event frames [B, T, C, H, W] or sequences [B, T, F]; got "
                              f"shape {tuple(x.shape)}")
        if timesteps > x.shape[1]:
            raise ConfigError(f"asked for T={timesteps} steps but the samples hold {x.shape[1]} frames")
        return x[:, :timesteps].transpose(0, 1)  # [B, T, ...] -> [T, B, ...]
