"""Input encoders as modules: images ``[B, C, H, W]`` -> input time series ``[T, B, C, H, W]``."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.coding import direct, rate_bipolar, rate_poisson
from deepspike.coding.rate import check_floating
from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import FLOAT32_TINY, is_float32
from deepspike.core.precision import at_least_float32

ENCODERS = ("direct", "poisson", "bipolar")


def check_input_scale(scale: float, kind: str = "bipolar", key: str = "encoder scale") -> None:
    """``ConfigError`` (naming ``key``) unless ``scale`` is a float32 number from its smallest normal up, and 1 for
    every encoder ``kind`` but ``bipolar`` (the only one that divides its input by it)."""
    if not (is_float32(scale) and scale >= FLOAT32_TINY):
        raise ConfigError(f"bad value {scale!r} for {key}: expected a number > 0 (from float32's smallest normal "
                          f"{FLOAT32_TINY:.4g} to its largest)")
    if scale != 1.0 and kind != "bipolar":
        raise ConfigError(f"bad value {scale!r} for {key}: only the bipolar encoder scales its input (got {kind!r})")


class InputEncoder(nn.Module):
    """Rate coding of images ``x [B, C, H, W]`` into ``forward(x, timesteps) -> [T, B, C, H, W]`` (``T = timesteps``):

    ``direct``: the analog image at every step, ``x_t = x`` (wu2019's encoding layer; a broadcast view);
    ``poisson``: Bernoulli spikes ``s_t = 1[U_t < x]``, U_t ~ Uniform(0, 1), so ``p = x`` per step (x in [0, 1]);
    ``bipolar``: ``s_t = sign(x) 1[|x| / c > U_t]`` with the input scale ``c = scale`` (lee2020; x normalised to
    [-1, 1], ``c = 1``; lee2020's MNIST code halves the [0, 1] pixels, ``c = 2``), so ``P(s_t != 0) = min(|x| / c, 1)``;
    ``|x| / c`` is computed in float32 for bfloat16 / float16 ``x`` (``core.precision.at_least_float32``: a bfloat16
    quotient was rounded to 2^-9 relative) and the spikes are returned in ``x``'s dtype.
    Random encoders draw from torch's global generator, so checkpoints restore them exactly."""

    def __init__(self, kind: str, scale: float = 1.0) -> None:
        super().__init__()
        if kind not in ENCODERS:
            raise unknown_choice("encoder", kind, ENCODERS)
        check_input_scale(scale, kind)
        self.kind, self.scale = kind, float(scale)

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        if self.kind == "direct":
            return direct(x, timesteps)
        if self.kind == "poisson":
            return rate_poisson(x, timesteps)
        if self.scale == 1.0:
            return rate_bipolar(x, timesteps)
        check_floating(x, "rate_bipolar")  # int pixels were divided into float spikes here, refused at scale 1
        return rate_bipolar(x.to(at_least_float32(x.dtype)) / self.scale, timesteps).to(x.dtype)

    def extra_repr(self) -> str:
        return self.kind if self.scale == 1.0 else f"{self.kind}, scale={self.scale:g}"
