"""Batch augmentation and normalisation as tensor ops on whole batches (no per-sample Python).

Random numbers come from a ``torch.Generator`` on the CPU that the caller seeds (the batch iterator seeds
one per batch from ``(seed, epoch, rank, batch index)``), so augmentation is reproducible for a seed and
independent of the device the batch lives on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError


def shift_crop(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, padding: int) -> torch.Tensor:
    """Crop each image from its zero-padded version at a given offset.

    ``x [B, C, H, W]``, offsets ``dy, dx`` int64 ``[B]`` in ``[0, 2 * padding]``. With ``xp`` = ``x`` padded
    by ``padding`` zeros on every side: ``out[b, c, i, j] = xp[b, c, i + dy[b], j + dx[b]]``, i.e. the image
    moves by ``(padding - dy[b], padding - dx[b])`` pixels (down, right) and zeros fill in.
    """
    if padding == 0:
        return x
    b, c, h, w = x.shape
    p = padding
    xp = F.pad(x, (p, p, p, p))  # [B, C, H + 2p, W + 2p]
    rows = dy.to(x.device)[:, None] + torch.arange(h, device=x.device)  # [B, H]
    cols = dx.to(x.device)[:, None] + torch.arange(w, device=x.device)  # [B, W]
    # two separable gathers (faster than one 4-index advanced-indexing gather)
    xp = xp.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * p))  # [B, C, H, W + 2p]
    return xp.gather(3, cols[:, None, None, :].expand(b, c, h, w))  # [B, C, H, W]


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding: :func:`shift_crop` with ``dy, dx ~ U{0, ..., 2 * padding}`` ``[B]``."""
    if padding == 0:
        return x
    dy = torch.randint(0, 2 * padding + 1, (x.shape[0],), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (x.shape[0],), generator=generator)
    return shift_crop(x, dy, dx, padding)


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``: ``out[b] = x[b, :, :, ::-1]`` where ``u_b < p``.

    ``x [B, C, H, W]``; ``u ~ U[0, 1) [B]`` from ``generator``.
    """
    flip = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)  # [B]
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def normalize(x: torch.Tensor, mean: Sequence[float] | torch.Tensor,
              std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation ``(x[:, c] - mean[c]) / std[c]``; ``x [B, C, H, W]``, mean/std ``[C]``.

    Frame sequences ``x [B, T, C, H, W]`` and ``[B, T, F]`` (event data sets, SHD, image rows) are standardised
    per channel C (per feature F) of each step, the axis 2 that their statistics (``frame_stats``) are taken over.
    """
    axis = 2 if x.dim() in (3, 5) else 1
    shape = [1] * x.dim()
    shape[axis] = -1
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)  # [1, C, 1, 1] / [1, 1, C, 1, 1] / [1, 1, F]
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    if m.shape[axis] != x.shape[axis] or s.shape[axis] != x.shape[axis]:
        raise ConfigError(f"normalize: {x.shape[axis]} channels but mean/std of length "
                          f"{m.shape[axis]}/{s.shape[axis]}")
    return (x - m) / s.clamp_min(1e-12)


@dataclass(frozen=True)
class Augment:
    """Training augmentation: random crop with ``crop_padding`` zeros, then a random horizontal flip.

    Call as ``augment(x [B, C, H, W], generator) -> [B, C, H, W]``.
    """

    crop_padding: int = 0
    hflip: bool = False

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ConfigError(f"augment.crop_padding must be >= 0, got {self.crop_padding}")

    @property
    def is_identity(self) -> bool:
        """True when neither crop nor flip is on (nothing to do)."""
        return self.crop_padding == 0 and not self.hflip

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = random_crop(x, self.crop_padding, generator)
        return random_hflip(x, generator) if self.hflip else x


AugmentFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def as_augment(spec) -> AugmentFn | None:
    """Turn what a caller passes as ``augment`` into a callable, or None for no augmentation.

    Accepts None, an :class:`Augment`, any ``fn(x, generator)``, a dict ``{crop_padding, hflip}``, or an
    object with those attributes (the recipe's ``AugmentConfig``).
    """
    if spec is None:
        return None
    if isinstance(spec, dict):
        unknown = set(spec) - {"crop_padding", "hflip"}
        if unknown:
            raise ConfigError(f"unknown augment option(s) {sorted(unknown)}; valid: crop_padding, hflip")
        spec = Augment(**spec)
    elif not isinstance(spec, Augment) and hasattr(spec, "crop_padding"):
        spec = Augment(crop_padding=int(spec.crop_padding), hflip=bool(getattr(spec, "hflip", False)))
    if isinstance(spec, Augment):
        return None if spec.is_identity else spec
    if callable(spec):
        return spec
    raise ConfigError(f"augment must be None, a dict, an Augment or a callable, got {type(spec).__name__}")
