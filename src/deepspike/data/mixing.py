"""Mixing training samples: MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019), with mixed labels.

A batch ``x [B, ...]`` with labels ``y [B]`` is mixed with a shuffled copy of itself, ``x[perm]``, by a share
``lam ~ Beta(alpha, alpha)`` drawn once per batch:

- MixUp: ``x' = lam x + (1 - lam) x[perm]``;
- CutMix: one box of the last two axes (an image's or event frame's ``H x W``, every channel and step alike; a
  sequence's ``T x F`` plane) is taken from ``x[perm]``; the box has sides ``sqrt(1 - lam)`` of the axes' lengths,
  a uniform centre, and is clipped at the borders, and ``lam`` becomes the share the box left, ``1 - area / (H W)``.

The labels become :class:`MixedLabels` ``(a = y, b = y[perm], lam)``; a method's loss is then scored as
``lam L(out, a) + (1 - lam) L(out, b)`` (:func:`mixed_loss`), for every method's loss alike, which for cross-entropy
equals the cross-entropy against the mixed one-hot targets; the training accuracy counts a prediction ``lam`` for
label ``a`` and ``1 - lam`` for label ``b``. Random numbers come from the caller's CPU generator (``lam`` through a
numpy generator it seeds: the same draws for the same numpy version). As in the reference implementations the box
side is even and clipped at the borders, so on small last axes many batches take little or nothing of the partner
(``lam`` says how much they did).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite


@dataclass(frozen=True)
class MixedLabels:
    """Labels of a mixed batch: sample ``i`` is ``lam`` parts label ``a[i]`` and ``1 - lam`` parts ``b[i]``
    (``a``, ``b`` int64 ``[B]``)."""

    a: torch.Tensor
    b: torch.Tensor
    lam: float

    def __len__(self) -> int:
        return len(self.a)

    def split(self, sections: int, index: int) -> MixedLabels:
        """Part ``index`` of ``torch.tensor_split(..., sections)`` of both label tensors (a data-parallel rank's)."""
        return MixedLabels(torch.tensor_split(self.a, sections)[index], torch.tensor_split(self.b, sections)[index],
                           self.lam)


def mixed_loss(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], out: torch.Tensor, y) -> torch.Tensor:
    """``loss(out, y)``, or for :class:`MixedLabels` ``lam loss(out, a) + (1 - lam) loss(out, b)``."""
    if isinstance(y, MixedLabels):
        return y.lam * loss(out, y.a) + (1.0 - y.lam) * loss(out, y.b)
    return loss(out, y)


def correct(predicted: torch.Tensor, y) -> float:
    """How many predictions ``[B]`` are right: for :class:`MixedLabels` each counts ``lam`` for label ``a`` and
    ``1 - lam`` for label ``b``."""
    if isinstance(y, MixedLabels):
        return float(y.lam * (predicted == y.a).sum() + (1.0 - y.lam) * (predicted == y.b).sum())
    return float((predicted == y).sum())


MAX_ALPHA = 100
"""The largest Beta alpha taken (as ``augment.mixup`` / ``augment.cutmix``)."""


def _share(alpha: float, generator: torch.Generator) -> float:
    """``lam ~ Beta(alpha, alpha)``, drawn from ``generator`` (through a numpy generator it seeds). ``alpha``: a
    number in (0, 100], else a one-line ``ConfigError`` (0 or less raised numpy's ValueError, NaN gave lam NaN)."""
    if not (is_finite(alpha) and 0 < alpha <= MAX_ALPHA):
        raise ConfigError(f"mixing: Beta's alpha must be a number in (0, {MAX_ALPHA}], got {alpha!r}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator
          ) -> tuple[torch.Tensor, MixedLabels]:
    """MixUp of ``x [B, ...]`` (module docstring); returns the mixed batch and its labels."""
    lam = _share(alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1.0 - lam) * x[perm], MixedLabels(y, y[perm], lam)


def cutmix(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator
           ) -> tuple[torch.Tensor, MixedLabels]:
    """CutMix of ``x [B, ..., H, W]`` (at least 3 dims; module docstring); returns the mixed batch and its labels."""
    if x.dim() < 3:
        raise ConfigError(f"data.augment.cutmix needs pictures or sequences, got a batch of shape {list(x.shape)}")
    lam = _share(alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    h, w = x.shape[-2:]
    side = math.sqrt(1.0 - lam)
    cy, cx = (int(torch.randint(0, n, (1,), generator=generator)) for n in (h, w))
    half_h, half_w = int(h * side) // 2, int(w * side) // 2
    r0, r1, c0, c1 = max(cy - half_h, 0), min(cy + half_h, h), max(cx - half_w, 0), min(cx + half_w, w)
    out = x.clone()
    out[..., r0:r1, c0:c1] = x[..., r0:r1, c0:c1][perm]  # the box of each partner (not a copy of the whole batch)
    return out, MixedLabels(y, y[perm], 1.0 - (r1 - r0) * (c1 - c0) / (h * w))


def mix_batch(x: torch.Tensor, y: torch.Tensor, mixup_alpha: float, cutmix_alpha: float,
              generator: torch.Generator) -> tuple[torch.Tensor, MixedLabels]:
    """MixUp or CutMix, whichever has an ``alpha > 0``; with both, one of the two per batch, each with probability
    1/2 (timm's switch). Neither on is a one-line ``ConfigError`` (``Augment.mix`` returns the batch unchanged)."""
    if not (cutmix_alpha > 0 or mixup_alpha > 0):
        raise ConfigError(f"mix_batch: neither MixUp nor CutMix is on (alphas {mixup_alpha!r} and {cutmix_alpha!r})")
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or bool(torch.rand(1, generator=generator) < 0.5))
    if use_cutmix:
        return cutmix(x, y, cutmix_alpha, generator)
    return mixup(x, y, mixup_alpha, generator)
