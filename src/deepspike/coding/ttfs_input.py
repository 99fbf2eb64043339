"""Input coding of images into single input spikes for TTFS networks, with training-time jitter.

Three rules (``x`` = pixel intensity in [0, 1], as the data loaders return it, ``x = s / 255``):

* ``"1-p"``: ``t = alpha (1 - x)``  (zhou2021 MNIST; brighter pixels fire earlier);
* ``"p"``:   ``t = alpha x``        (zhou2021 CIFAR-10);
* ``"255"``: ``t = alpha (255 - s) / 255`` with ``s = round(255 x)`` the 8-bit intensity (zhang2021 V-A;
  the same as ``"1-p"`` on 8-bit images, exact on the integer grid).

Jitter (zhang2021 V-B, sigma 0.14; zhou2021's "noisy input"): during training only,
``t += N(0, sigma^2)`` then clamped at 0 (no spike before the window opens).
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.coding.latency import check_alpha, check_jitter, jitter_times, ttfs_latency
from deepspike.coding.rate import check_intensities
from deepspike.core.errors import unknown_choice
from deepspike.core.precision import at_least_float32

CODINGS = ("1-p", "p", "255")


def encode_times(x: torch.Tensor, coding: str = "1-p", alpha: float = 1.0) -> torch.Tensor:
    """Spike times ``[B, ...]`` of intensities ``x [B, ...]`` in [0, 1]: ``alpha (1 - x)`` ("1-p"), ``alpha x``
    ("p") or ``alpha (255 - round(255 x)) / 255`` ("255"; module docstring), in ``x``'s dtype promoted with float32
    (float16's ``alpha (255 - s)`` overflowed to ``+inf``, "no spike", from ``alpha = 257``)."""
    if coding not in CODINGS:
        raise unknown_choice("TTFS input coding", coding, CODINGS)
    if coding == "255":
        check_alpha(alpha, "TTFS coding")
        check_intensities(x, "TTFS coding '255'")
        s = torch.round(x.to(at_least_float32(x.dtype)) * 255.0)
        return alpha * (255.0 - s) / 255.0
    return ttfs_latency(x, alpha=alpha, mode=coding)


class TTFSInput(nn.Module):
    """Images ``[B, C, H, W]`` in [0, 1] -> input spike times ``[B, C, H, W]`` by ``encode_times`` (e.g.
    ``t = alpha (1 - x)``), in training ``max(t + N(0, jitter^2), 0)`` (zhang2021 V-B)."""

    def __init__(self, coding: str = "1-p", alpha: float = 1.0, jitter: float = 0.0):
        super().__init__()
        if coding not in CODINGS:
            raise unknown_choice("TTFS input coding", coding, CODINGS)
        check_alpha(alpha, "TTFS coding")
        check_jitter(jitter, "TTFS input")
        self.coding, self.alpha, self.jitter = coding, float(alpha), float(jitter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = encode_times(x, self.coding, self.alpha)
        if self.training and self.jitter > 0:
            t = jitter_times(t, self.jitter)
        return t

    def extra_repr(self) -> str:
        return f"coding={self.coding!r}, alpha={self.alpha}, jitter={self.jitter}"
