"""Augmentations of sequence batches ``[B, T, F]`` (SHD / SSC channels, image rows), as whole-batch tensor ops.

- ``channel_shift``: every step's F channels moved by one offset per sample, zeros coming in (the random
  channel shifts of SHD training: a speaker's formants sit a few cochlear channels higher or lower);
- ``time_mask`` / ``channel_mask``: one band of consecutive steps / channels per sample set to zero, of a uniform
  width up to the given one (SpecAugment's time and frequency masks, Park et al. 2019; the time-neuron masks of
  the SHD delay-learning recipes).

Random numbers come from the caller's CPU ``torch.Generator``.
"""

from __future__ import annotations

import torch

from deepspike.core.errors import ConfigError


def check_sequences(x: torch.Tensor, option: str) -> None:
    """ConfigError unless ``x`` is a sequence batch ``[B, T, F]``."""
    if x.dim() != 3:
        raise ConfigError(f"data.augment.{option} needs sequences [B, T, F], got a batch of shape {list(x.shape)}")


def shift_channels(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``out[b, t, f] = x[b, t, f - shift[b]]`` where ``0 <= f - shift[b] < F``, else 0; ``x [B, T, F]``,
    ``shift`` int64 ``[B]``."""
    b, t, f = x.shape
    source = torch.arange(f) - shift[:, None]  # [B, F]
    inside = ((source >= 0) & (source < f)).to(x.device)
    index = source.clamp(0, f - 1).to(x.device)
    out = x.gather(2, index[:, None, :].expand(b, t, f))
    return torch.where(inside[:, None, :], out, 0)


def random_channel_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """:func:`shift_channels` by ``U{-max_shift, ..., max_shift}`` per sample."""
    check_sequences(x, "channel_shift")
    shift = torch.randint(-max_shift, max_shift + 1, (x.shape[0],), generator=generator)
    return shift_channels(x, shift)


def _bands(n: int, length: int, max_width: int, generator: torch.Generator) -> torch.Tensor:
    """Per sample a band ``[start, start + width)`` of ``range(length)``, ``width ~ U{0, ..., min(max_width,
    length)}``, ``start ~ U{0, ..., length - width}``: a bool mask ``[n, length]``, True inside the band."""
    width = torch.randint(0, min(max_width, length) + 1, (n,), generator=generator)
    start = (torch.rand(n, generator=generator) * (length - width + 1)).long()  # uniform over the free places
    positions = torch.arange(length)
    return (positions >= start[:, None]) & (positions < (start + width)[:, None])


def random_time_mask(x: torch.Tensor, max_width: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one band of up to ``max_width`` consecutive steps of each sample (all channels); ``x [B, T, F]``."""
    check_sequences(x, "time_mask")
    band = _bands(x.shape[0], x.shape[1], max_width, generator).to(x.device)  # [B, T]
    return torch.where(band[:, :, None], 0, x)


def random_channel_mask(x: torch.Tensor, max_width: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one band of up to ``max_width`` consecutive channels of each sample (all steps); ``x [B, T, F]``."""
    check_sequences(x, "channel_mask")
    band = _bands(x.shape[0], x.shape[2], max_width, generator).to(x.device)  # [B, F]
    return torch.where(band[:, None, :], 0, x)
