"""Event frames and analog sequences as the input of a rate network: as they are (wu2019's encoding layer on
neuromorphic data) or delta-modulated into ON/OFF spikes."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.coding.delta import delta_modulation
from deepspike.coding.rate import check_steps
from deepspike.core.errors import ConfigError


def first_steps(x: torch.Tensor, timesteps: int, encoder: str) -> torch.Tensor:
    """The first ``timesteps`` steps of sample-first frames ``[B, T', C, H, W]`` or sequences ``[B, T', F]``,
    time-first ``[T, B, ...]``; ``ConfigError`` naming ``encoder`` for another shape or ``T > T'``, and for a ``T``
    that is no integer >= 1 (``coding.rate.check_steps``, as the static encoders: ``x[:, :-2]`` would be all but the
    last two frames)."""
    timesteps = check_steps(timesteps)
    if x.dim() not in (3, 5):
        raise ConfigError(f"encoder {encoder!r} needs event frames [B, T, C, H, W] or sequences [B, T, F]; got "
                          f"shape {tuple(x.shape)}")
    if timesteps > x.shape[1]:
        raise ConfigError(f"asked for T={timesteps} steps but the samples hold {x.shape[1]} frames: set "
                          f"method.timesteps to at most {x.shape[1]}, or bin more frames per sample")
    return x[:, :timesteps].transpose(0, 1)  # [B, T, ...] -> [T, B, ...]


class FrameEncoder(nn.Module):
    """Sample-first event frames ``[B, T', C, H, W]`` -> time-first ``[T, B, C, H, W]``; sequences ``[B, T', F]``
    (one feature vector per step, e.g. SHD's 700 channels) -> ``[T, B, F]`` alike.

    The first ``T`` frames are used (``T <= T'``), so training and inference T can still differ; a request
    for more steps than the sample has frames raises ``ConfigError``.
    """

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        return first_steps(x, timesteps, "frames")


class DeltaEncoder(nn.Module):
    """Analog sequences ``[B, T', F]`` or frames ``[B, T', C, H, W]`` -> ON/OFF delta spikes ``[T, B, ...]`` in
    ``{-1, 0, 1}`` of their first ``T`` steps (:func:`deepspike.coding.delta_modulation`: ``step`` or ``level``
    rule, threshold ``theta > 0``, OFF spikes optional). ``kind`` is ``"delta"``."""

    kind = "delta"

    def __init__(self, threshold: float, off_spikes: bool = True, mode: str = "step") -> None:
        super().__init__()
        delta_modulation(torch.zeros(1), threshold, off_spikes, mode)  # bad options fail here, in one line
        self.threshold, self.off_spikes, self.mode = float(threshold), bool(off_spikes), mode

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        return delta_modulation(first_steps(x, timesteps, "delta"), self.threshold, self.off_spikes, self.mode)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold:g}, off_spikes={self.off_spikes}, mode={self.mode}"
