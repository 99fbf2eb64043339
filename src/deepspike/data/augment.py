"""Batch augmentation and normalisation as tensor ops on whole batches (no per-sample Python).

Random numbers come from a ``torch.Generator`` on the CPU that the caller seeds (the batch iterator seeds
one per batch from ``(seed, epoch, rank, batch index)``), so augmentation is reproducible for a seed and
independent of the device the batch lives on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.data import frame_augment, mixing, sequence_augment


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
    """Per-channel standardisation ``(x[:, c] - mean[c]) / scale[c]``; ``x [B, C, H, W]``, mean/std ``[C]``.

    ``scale[c] = std[c]``, or 1 where ``std[c] == 0`` (a channel constant in the training split is only centred,
    as scikit-learn's ``StandardScaler`` does: dividing by ~0 made any other value ~1e12). A non-finite mean or
    std, or a negative std, is a one-line ``ConfigError`` (it gave NaN, or was silently clamped).
    Frame sequences ``x [B, T, C, H, W]`` and ``[B, T, F]`` (event data sets, SHD, image rows) are standardised
    per channel C (per feature F) of each step, the axis 2 that their statistics (``frame_stats``) are taken over.
    """
    axis = 2 if x.dim() in (3, 5) else 1
    shape = [1] * x.dim()
    shape[axis] = -1
    m = torch.as_tensor(mean, dtype=x.dtype).view(shape)  # [1, C, 1, 1] / [1, 1, C, 1, 1] / [1, 1, F]
    s = torch.as_tensor(std, dtype=x.dtype).view(shape)
    if m.shape[axis] != x.shape[axis] or s.shape[axis] != x.shape[axis]:
        raise ConfigError(f"normalize: {x.shape[axis]} channels but mean/std of length "
                          f"{m.shape[axis]}/{s.shape[axis]}")
    _check_stats(m, s)  # before the move to x's device: lists are checked on the CPU, with no device sync
    m, s = m.to(x.device), s.to(x.device)
    return (x - m) / torch.where(s == 0, torch.ones_like(s), s)


def _check_stats(mean: torch.Tensor, std: torch.Tensor) -> None:
    """A one-line ``ConfigError`` naming the first channel whose mean is not finite or whose std is not a finite
    number >= 0."""
    m, s = (t.detach().flatten().to("cpu", torch.float64) for t in (mean, std))
    bad = ~torch.isfinite(m) | ~torch.isfinite(s) | (s < 0)  # [C]; NaN < 0 is False, isfinite catches it
    if bool(bad.any()):
        c = int(bad.nonzero()[0])
        raise ConfigError(f"normalize: channel {c} has mean {float(m[c])} and std {float(s[c])}; the mean must be "
                          f"finite and the std a finite number >= 0")


MAX_SIZE = 65536
"""The largest pixel / step / channel count an augmentation option takes (beyond any picture or sequence)."""
ALPHA_RULE = f"in [0, {mixing.MAX_ALPHA}] (Beta's alpha; 0: off)"


@dataclass(frozen=True)
class Augment:
    """Training augmentation of images ``[B, C, H, W]``, event frames ``[B, T, C, H, W]`` (a frame sequence moves
    as one picture: the same draw for all T steps) and sequences ``[B, T, F]``.

    In this order: ``drop_event`` (probability of dropping each event; count data of any shape); on sequences the
    ops of :mod:`deepspike.data.sequence_augment` (``channel_shift``: channels moved by up to that many places,
    ``time_mask`` / ``channel_mask``: one zeroed band of up to that many steps / channels); on pictures a random
    crop with ``crop_padding`` zeros, a random horizontal flip (``hflip``), then the geometric ops of
    :mod:`deepspike.data.frame_augment`: ``roll`` (circular shift up to that many pixels), ``rotate`` (up to that
    many degrees), ``shear`` (horizontal, up to that many degrees), ``cutout`` (one zeroed square of that side).
    With ``one_of`` each sample takes exactly one of the geometric ops that are on, chosen uniformly (NDA, Li et
    al. 2022); otherwise every op that is on is applied. Call as ``augment(x, generator) -> x``'s shape. Then,
    with ``mixup`` / ``cutmix`` (Beta's alpha), :meth:`mix` mixes samples and their labels.
    """

    crop_padding: int = 0
    hflip: bool = False
    roll: int = 0
    rotate: float = 0.0
    shear: float = 0.0
    cutout: int = 0
    drop_event: float = 0.0
    one_of: bool = False
    channel_shift: int = 0
    time_mask: int = 0
    channel_mask: int = 0
    mixup: float = 0.0
    cutmix: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value, flag = getattr(self, f.name), f.name in ("hflip", "one_of")
            if isinstance(value, bool) != flag or not isinstance(value, int | float):
                raise ConfigError(f"augment.{f.name} must be {'true or false' if flag else 'a number'}, got {value!r}")
        sizes = [(name, is_whole(getattr(self, name), 0, MAX_SIZE), f"an integer from 0 to {MAX_SIZE}")
                 for name in ("crop_padding", "roll", "cutout", "channel_shift", "time_mask", "channel_mask")]
        for name, ok, rule in (*sizes,
                               ("rotate", 0 <= self.rotate <= 180, "in [0, 180]"),
                               ("shear", 0 <= self.shear < 90, "in [0, 90)"),
                               ("drop_event", 0 <= self.drop_event < 1, "in [0, 1)"),
                               ("mixup", 0 <= self.mixup <= mixing.MAX_ALPHA, ALPHA_RULE),
                               ("cutmix", 0 <= self.cutmix <= mixing.MAX_ALPHA, ALPHA_RULE)):
            if not ok:
                raise ConfigError(f"augment.{name} must be {rule}, got {getattr(self, name)}")
        if self.one_of and not self.geometric:
            raise ConfigError("augment.one_of picks one of roll, rotate, shear and cutout per sample, but none of "
                              "them is on")

    @property
    def geometric(self) -> tuple[Callable[[torch.Tensor, torch.Generator], torch.Tensor], ...]:
        """The geometric ops that are on, each ``op(x, generator)``, in the order roll, rotate, shear, cutout."""
        ops = []
        if self.roll:
            ops.append(lambda x, g: frame_augment.random_roll(x, self.roll, g))
        if self.rotate:
            ops.append(lambda x, g: frame_augment.random_affine(x, self.rotate, 0.0, g))
        if self.shear:
            ops.append(lambda x, g: frame_augment.random_affine(x, 0.0, self.shear, g))
        if self.cutout:
            ops.append(lambda x, g: frame_augment.random_cutout(x, self.cutout, g))
        return tuple(ops)

    @property
    def is_identity(self) -> bool:
        """True when nothing is on (nothing to do)."""
        return not (self.crop_padding or self.hflip or self.geometric or self.drop_event or self.on_sequences
                    or self.mixes)

    @property
    def mixes(self) -> bool:
        """True when samples are mixed (``mixup`` or ``cutmix``; their labels too: :meth:`mix`)."""
        return bool(self.mixup or self.cutmix)

    def mix(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """``(x', MixedLabels)``: the batch mixed by MixUp / CutMix (:mod:`deepspike.data.mixing`), after
        ``__call__``; ``(x, y)`` unchanged when neither is on."""
        if not self.mixes:
            return x, y
        return mixing.mix_batch(x, y, self.mixup, self.cutmix, generator)

    @property
    def on_sequences(self) -> bool:
        """True when a sequence op (channel shift, time or channel mask) is on."""
        return bool(self.channel_shift or self.time_mask or self.channel_mask)

    def check_sample_shape(self, shape: Sequence[int], steps: int | None = None) -> None:
        """ConfigError unless inputs of one step's ``shape`` (``DataSplits.input_shape``: ``[C, H, W]`` for images
        and event frames, ``[F]`` for sequences of ``steps`` steps, when known) can take the ops that are on: crops,
        flips and the geometric ops need pictures, channel shifts and masks sequences; ``drop_event`` takes any
        shape. Sizes must fit the sample: ``crop_padding``, ``roll`` and ``cutout`` at most the picture's shorter
        side, ``channel_shift`` and ``channel_mask`` fewer than its ``F`` channels, ``time_mask`` fewer than its
        steps (larger ones only blank or wrap every sample)."""
        spatial = self.crop_padding or self.hflip or self.geometric
        if spatial and len(shape) != 3:
            raise ConfigError(f"data.augment: crops, flips, roll, rotate, shear and cutout need images or event "
                              f"frames, but this data set's samples are {list(shape)} per step")
        if self.on_sequences and len(shape) != 1:
            raise ConfigError(f"data.augment: channel_shift, time_mask and channel_mask need sequences [T, F], but "
                              f"this data set's samples are {list(shape)} per step")
        side = min(shape[1:]) if len(shape) == 3 else None
        channels = shape[0] - 1 if len(shape) == 1 else None
        for name, limit in (("crop_padding", side), ("roll", side), ("cutout", side), ("channel_shift", channels),
                            ("channel_mask", channels), ("time_mask", None if steps is None else steps - 1)):
            if limit is not None and getattr(self, name) > limit:
                raise ConfigError(f"data.augment.{name}={getattr(self, name)} does not fit samples of shape "
                                  f"{list(shape)} per step{'' if steps is None else f' over {steps} steps'}: "
                                  f"at most {limit}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.drop_event:
            x = frame_augment.drop_events(x, self.drop_event, generator)
        if self.channel_shift:
            x = sequence_augment.random_channel_shift(x, self.channel_shift, generator)
        if self.time_mask:
            x = sequence_augment.random_time_mask(x, self.time_mask, generator)
        if self.channel_mask:
            x = sequence_augment.random_channel_mask(x, self.channel_mask, generator)
        if self.crop_padding or self.hflip:
            flat = frame_augment.fold_steps(x)
            flat = random_crop(flat, self.crop_padding, generator)
            x = (random_hflip(flat, generator) if self.hflip else flat).reshape(x.shape)
        ops = self.geometric
        if not self.one_of:
            for op in ops:
                x = op(x, generator)
            return x
        return _one_of(x, ops, generator) if ops else x


def _one_of(x: torch.Tensor, ops, generator: torch.Generator) -> torch.Tensor:
    """Each sample of ``x`` through one of ``ops``, chosen uniformly per sample: ``out[b] = ops[k_b](x[b])``."""
    choice = torch.randint(0, len(ops), (x.shape[0],), generator=generator)  # [B]
    out = x.clone()
    for k, op in enumerate(ops):
        idx = (choice == k).nonzero().squeeze(1).to(x.device)
        if idx.numel():
            out[idx] = op(x[idx], generator)
    return out


AUGMENT_OPTIONS = tuple(f.name for f in fields(Augment))
AugmentFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def as_augment(spec) -> AugmentFn | None:
    """Turn what a caller passes as ``augment`` into a callable, or None for no augmentation.

    Accepts None, an :class:`Augment`, any ``fn(x, generator)``, a dict of :class:`Augment`'s fields, or an
    object with those attributes (the recipe's ``AugmentConfig``).
    """
    if spec is None:
        return None
    if isinstance(spec, dict):
        unknown = set(spec) - set(AUGMENT_OPTIONS)
        if unknown:
            raise ConfigError(f"unknown augment option(s) {sorted(unknown)}; valid: {', '.join(AUGMENT_OPTIONS)}")
        spec = Augment(**spec)
    elif not isinstance(spec, Augment) and hasattr(spec, "crop_padding"):
        spec = Augment(**{name: getattr(spec, name) for name in AUGMENT_OPTIONS if hasattr(spec, name)})
    if isinstance(spec, Augment):
        return None if spec.is_identity else spec
    if callable(spec):
        return spec
    raise ConfigError(f"augment must be None, a dict, an Augment or a callable, got {type(spec).__name__}")
