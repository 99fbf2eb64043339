"""Input encoders as modules: images ``[B, C, H, W]`` -> input time series ``[T, B, C, H, W]``."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.coding import direct, rate_bipolar, rate_poisson
from deepspike.core.errors import unknown_choice

ENCODERS = ("direct", "poisson", "bipolar")


class InputEncoder(nn.Module):
    """Rate coding of images ``x [B, C, H, W]`` into ``forward(x, timesteps) -> [T, B, C, H, W]`` (``T = timesteps``):

    ``direct``: the analog image at every step, ``x_t = x`` (wu2019's encoding layer; a broadcast view);
    ``poisson``: Bernoulli spikes ``s_t = 1[U_t < x]``, U_t ~ Uniform(0, 1), so ``p = x`` per step (x in [0, 1]);
    ``bipolar``: ``s_t = sign(x) 1[|x| > U_t]`` (lee2020; x normalised to [-1, 1]).
    Random encoders draw from torch's global generator, so checkpoints restore them exactly."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in ENCODERS:
            raise unknown_choice("encoder", kind, ENCODERS)
        self.kind = kind

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        if self.kind == "direct":
            return direct(x, timesteps)
        if self.kind == "poisson":
            return rate_poisson(x, timesteps)
        return rate_bipolar(x, timesteps)

    def extra_repr(self) -> str:
        return self.kind
