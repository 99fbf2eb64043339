"""Geometric and event augmentations of image and event-frame batches (NDA-style), as whole-batch tensor ops.

Batches are images ``[B, C, H, W]`` or event frames ``[B, T, C, H, W]``; a frame sequence is moved as one
picture, the same draw for all its T steps (:func:`fold_steps` views it as ``[B, T * C, H, W]``), so an object's
motion across the steps is kept. ``drop_events`` also takes sequences ``[B, T, F]`` (SHD-style counts).

Li et al. 2022 (NDA) pick one of roll / rotate / shear per training sample, the same over all T, with nearest
sampling so event counts stay counts: rolls up to 5 px and rotations and shears up to 30 degrees on CIFAR10-DVS
at 48 x 48, 3 px and 15 degrees on N-Caltech101. Random numbers come from the caller's CPU ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch

from deepspike.core.errors import ConfigError


def fold_steps(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, C, H, W] -> [B, T * C, H, W]`` (a view where ``x`` is contiguous); images ``[B, C, H, W]`` as
    they are."""
    if x.dim() == 4:
        return x
    if x.dim() == 5:
        return x.reshape(x.shape[0], -1, *x.shape[-2:])
    raise ConfigError(f"data.augment: geometric augmentation needs images [B, C, H, W] or frames [B, T, C, H, W], "
                      f"got a batch of shape {list(x.shape)}")


def _uniform_int(n: int, high: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` integers uniform in ``{-high, ..., high}`` (int64 ``[n]``)."""
    return torch.randint(-high, high + 1, (n,), generator=generator)


def _uniform(n: int, high: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` floats uniform in ``[-high, high)`` (float64 ``[n]``)."""
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * high


def roll(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Circular shift of each picture, ``torch.roll`` per sample: ``out[b, :, i, j] = x[b, :, (i - dy[b]) % H,
    (j - dx[b]) % W]``; ``x [B, C, H, W]``, ``dy, dx`` int64 ``[B]``."""
    b, c, h, w = x.shape
    rows = (torch.arange(h) - dy[:, None]).remainder(h).to(x.device)  # [B, H]
    cols = (torch.arange(w) - dx[:, None]).remainder(w).to(x.device)  # [B, W]
    x = x.gather(2, rows[:, None, :, None].expand(b, c, h, w))
    return x.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def random_roll(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """:func:`roll` by ``dy, dx ~ U{-max_shift, ..., max_shift}`` per picture (images or frames, see module)."""
    flat = fold_steps(x)
    n = flat.shape[0]
    dy, dx = _uniform_int(n, max_shift, generator), _uniform_int(n, max_shift, generator)
    return roll(flat, dy, dx).view(x.shape)


def affine_nearest(x: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Resample each picture through a linear map about its centre, nearest pixel, zeros outside.

    ``x [B, C, H, W]``; ``inverse [B, 2, 2]`` maps an output pixel's offset from the centre ``(u, v)`` (column,
    row; rows grow downwards; centre ``((W - 1) / 2, (H - 1) / 2)``) to the source offset:
    ``out[b, :, i, j] = x[b, :, round(cy + s_v), round(cx + s_u)]`` with ``(s_u, s_v) = inverse[b] (j - cx, i - cy)``,
    or 0 where that pixel lies outside the picture.
    """
    b, c, h, w = x.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64) - cy, torch.arange(w, dtype=torch.float64) - cx,
                          indexing="ij")
    offsets = torch.stack([u.reshape(-1), v.reshape(-1)])  # [2, H * W]
    src = inverse.to(torch.float64) @ offsets  # [B, 2, H * W]
    cols = torch.round(src[:, 0] + cx).long()  # [B, H * W]
    rows = torch.round(src[:, 1] + cy).long()
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    index = torch.where(inside, rows * w + cols, 0).to(x.device)
    out = x.reshape(b, c, h * w).gather(2, index[:, None, :].expand(b, c, h * w))
    return torch.where(inside.to(x.device)[:, None, :], out, 0).view(b, c, h, w)  # 0 also where an inf was gathered


def rotation_shear_inverse(angle_deg: torch.Tensor, shear_deg: torch.Tensor) -> torch.Tensor:
    """The source map of a rotation by ``angle`` (counter-clockwise on the screen, ``torch.rot90``'s sense for
    90 degrees) followed by a horizontal shear ``u' = u + tan(shear) v``: ``(S R)^-1 = R^-1 S^-1`` with
    ``R^-1 = [[cos, -sin], [sin, cos]]``, ``S^-1 = [[1, -tan], [0, 1]]`` in (column, row-down) offsets.
    Angles float ``[B]`` in degrees; returns float64 ``[B, 2, 2]``."""
    a = angle_deg.to(torch.float64) * (math.pi / 180)
    t = torch.tan(shear_deg.to(torch.float64) * (math.pi / 180))
    cos, sin = torch.cos(a), torch.sin(a)
    r_inv = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [B, 2, 2]
    s_inv = torch.zeros_like(r_inv)
    s_inv[:, 0, 0] = 1
    s_inv[:, 0, 1] = -t
    s_inv[:, 1, 1] = 1
    return r_inv @ s_inv


def random_affine(x: torch.Tensor, rotate: float, shear: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate by ``U[-rotate, rotate)`` degrees, then shear horizontally by ``U[-shear, shear)`` degrees, each picture
    on its own draw (:func:`affine_nearest`, :func:`rotation_shear_inverse`)."""
    flat = fold_steps(x)
    n = flat.shape[0]
    angle, shear_angle = _uniform(n, rotate, generator), _uniform(n, shear, generator)
    return affine_nearest(flat, rotation_shear_inverse(angle, shear_angle)).view(x.shape)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``size x size`` square per picture (all channels and steps): rows ``[cy - size // 2, cy - size // 2
    + size)`` and the same for columns, centre ``(cy, cx)`` uniform over the pixels, clipped at the borders."""
    flat = fold_steps(x)
    n, _, h, w = flat.shape
    cy = torch.randint(0, h, (n,), generator=generator) - size // 2
    cx = torch.randint(0, w, (n,), generator=generator) - size // 2
    rows, cols = torch.arange(h), torch.arange(w)
    in_rows = (rows >= cy[:, None]) & (rows < cy[:, None] + size)  # [B, H]
    in_cols = (cols >= cx[:, None]) & (cols < cx[:, None] + size)  # [B, W]
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])  # [B, H, W]
    return torch.where(keep.to(x.device)[:, None], flat, 0).view(x.shape)


def check_counts(x: torch.Tensor) -> None:
    """ConfigError unless every entry of ``x`` is a finite whole number >= 0 (an event count)."""
    if not bool((torch.isfinite(x) & (x >= 0) & (x == torch.round(x))).all()):
        raise ConfigError("data.augment.drop_event needs event counts (finite non-negative whole numbers) before "
                          "normalisation; this data set's inputs are not counts")


def drop_events(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Drop each event independently with probability ``p`` (tonic's ``DropEvent`` on the frames): a pixel's count
    ``n`` becomes ``Binomial(n, 1 - p)``. ``x``: event counts of any shape (``[B, T, C, H, W]``, ``[B, T, F]``),
    else ConfigError (:func:`check_counts`)."""
    check_counts(x)
    counts = x.detach().to("cpu", torch.float32)
    kept = torch.binomial(counts, torch.full_like(counts, 1 - p), generator=generator)
    return kept.to(x.device, x.dtype)
