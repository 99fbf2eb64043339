"""Event-camera emulation: a static image seen by a DVS on N-MNIST-style saccades.

The image (intensities ``I`` in [0, 1], ``[H, W]``) sits in the middle of a sensor ``pad`` pixels larger
on each side and moves along N-MNIST's three saccades, an isosceles triangle
``(0, 0) -> (A/2, A) -> (A, 0) -> (0, 0)`` in ``(dx, dy)`` pixels (centred on the start, ``A = amplitude``),
sampled at ``S + 1`` equally spaced times ``t_s = s * duration / S`` (bilinear interpolation for sub-pixel
shifts). Each pixel keeps a reference log intensity ``L_ref`` (initially ``L_0``) and, at every sample,
``L_s = log(I_s + eps)`` emits events (DVS model, Lichtsteiner et al. 2008)::

    n_on  = floor((L_s - L_ref) / C)   if L_s > L_ref     (ON events, polarity 1)
    n_off = floor((L_ref - L_s) / C)   if L_s < L_ref     (OFF events, polarity 0)
    L_ref += (n_on - n_off) * C

all stamped ``t_s`` (microseconds). A change smaller than the contrast threshold ``C`` emits nothing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.data.neuromorphic.formats import make_events

MAX_COUNT = torch.iinfo(torch.int16).max
"""The most events one pixel emits at one sample (the counts are int16)."""
MIN_THRESHOLD = 1e-6
"""The smallest contrast threshold: about 4 float32 steps of the log level at log 0.1 (2.4e-7 each). The reference
level moves by ``steps * threshold`` in float32, so a threshold near that step counts its rounding as crossings:
1e-7 fired pixels that had not changed, and one below float32's smallest normal made the level inf, then NaN."""


def saccade_offsets(samples: int, amplitude: float = 7.0) -> torch.Tensor:
    """``[S + 1, 2]`` float64 ``(dx, dy)`` along the three saccades (module docstring), minus the path's
    centre ``(A/2, A/2)``, so the image stays centred on average. Sample 0 is the start."""
    if samples < 3:
        raise ConfigError(f"emulation needs >= 3 position samples (one per saccade), got {samples}")
    a = float(amplitude)
    corners = torch.tensor([[0.0, 0.0], [a / 2, a], [a, 0.0], [0.0, 0.0]], dtype=torch.float64)  # [4, 2]
    u = torch.linspace(0.0, 3.0, samples + 1, dtype=torch.float64)  # path parameter, 1 per saccade
    seg = u.floor().clamp(max=2).long()
    frac = (u - seg).unsqueeze(1)  # [S+1, 1]
    path = corners[seg] * (1 - frac) + corners[seg + 1] * frac  # [S+1, 2]
    return path - torch.tensor([a / 2, a / 2], dtype=torch.float64)


def shift_matrix(size: int, d: float) -> torch.Tensor:
    """``[size, size]`` linear-interpolation matrix ``M[i, j] = max(0, 1 - |i - d - j|)``: ``M @ v`` moves the
    signal ``v`` by ``d`` samples (``(M v)[i] = v(i - d)``, zero outside)."""
    i = torch.arange(size, dtype=torch.float64)
    return (1.0 - (i[:, None] - d - i[None, :]).abs()).clamp(min=0.0)


def shift_images(canvas: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """``out[n, y, x] = canvas[n, y - dy, x - dx]`` with bilinear interpolation, zeros outside.

    canvas ``[N, H, W]`` -> ``[N, H, W]`` (content moves by ``+dx`` columns, ``+dy`` rows); separable:
    ``out = M_y @ canvas @ M_x^T`` with :func:`shift_matrix`.
    """
    my = shift_matrix(canvas.shape[1], dy).to(canvas.dtype)
    mx = shift_matrix(canvas.shape[2], dx).to(canvas.dtype)
    return my @ canvas @ mx.T


def check_threshold(threshold: float) -> None:
    """One-line ``ConfigError`` unless ``threshold`` is a finite number from ``MIN_THRESHOLD`` up."""
    if not (is_finite(threshold) and threshold >= MIN_THRESHOLD):
        raise ConfigError(f"emulation: threshold must be a finite number >= {MIN_THRESHOLD:g} (float32 rounding of the "
                          f"log level, 2.4e-7, would count as events below it), got {threshold!r}")


def check_samples(timesteps: int, substeps: int) -> None:
    """One-line ``ConfigError`` unless the ``timesteps x substeps`` position samples are >= 3 (one per saccade)."""
    if timesteps * substeps < 3:
        raise ConfigError(f"emulation needs timesteps x substeps >= 3 position samples (one per saccade), got "
                          f"{timesteps} x {substeps} = {timesteps * substeps}")


def change_events(images: torch.Tensor, samples: int = 32, threshold: float = 0.2, pad: int = 3,
                  amplitude: float = 7.0, eps: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Event counts per sample: ``(on, off)``, each int16 ``[N, S, H + 2 pad, W + 2 pad]``.

    images ``[N, H, W]`` in [0, 1]. ``on[n, s-1, y, x]`` is the number of ON events of pixel ``(x, y)`` at
    sample ``s`` = 1..S (module docstring), capped at ``MAX_COUNT`` (a threshold below ~7e-5 crosses more often in
    one sample; frames clip at 255 anyway). ``L_ref`` moves by the uncapped count.
    """
    check_threshold(threshold)
    if images.dim() != 3:
        raise ConfigError(f"emulation needs greyscale images [N, H, W], got shape {tuple(images.shape)}")
    canvas = F.pad(images.float(), (pad, pad, pad, pad))  # [N, H + 2p, W + 2p]
    offsets = saccade_offsets(samples, amplitude)
    ref = torch.log(shift_images(canvas, *offsets[0].tolist()) + eps)
    on = torch.zeros((len(images), samples, *canvas.shape[1:]), dtype=torch.int16)
    off = torch.zeros_like(on)
    for s in range(1, samples + 1):
        level = torch.log(shift_images(canvas, *offsets[s].tolist()) + eps)
        steps = torch.trunc((level - ref) / threshold)  # signed number of threshold crossings
        ref += steps * threshold
        on[:, s - 1] = steps.clamp(0, MAX_COUNT).to(torch.int16)  # unclamped, a count past int16 wrapped negative
        off[:, s - 1] = (-steps).clamp(0, MAX_COUNT).to(torch.int16)
    return on, off


def counts_to_frames(on: torch.Tensor, off: torch.Tensor, timesteps: int, stride: int = 1,
                     binary: bool = False) -> torch.Tensor:
    """Sum the ``S`` samples into ``T`` frames: sample ``s`` (0-based) goes to frame ``s * T // S``.

    ``(on, off) [N, S, H, W]`` -> uint8 ``[N, T, 2, H // stride, W // stride]`` (channel 0 OFF, 1 ON;
    pixels pooled by summing ``stride x stride`` blocks; counts clipped to 255, or 0/1 with ``binary``).
    """
    n, s, h, w = on.shape
    if timesteps < 1 or timesteps > s:
        raise ConfigError(f"emulation: timesteps must be in 1..{s} (the position samples), got {timesteps}")
    frames = torch.empty((n, timesteps, 2, h // stride, w // stride), dtype=torch.uint8)
    for t in range(timesteps):  # int32 sums of one frame at a time, each sample pooled before it is added: no int32
        total = torch.zeros((n, 2, *frames.shape[3:]), dtype=torch.int32)  # frames (of the full sensor) beside
        for sample in range(-(-t * s // timesteps), -(-(t + 1) * s // timesteps)):  # the s with s * T // S == t
            for channel, counts in enumerate((off, on)):
                total[:, channel] += _pooled(counts[:, sample], stride)
        frames[:, t] = total.clamp_(max=1 if binary else 255)
    return frames


def _pooled(counts: torch.Tensor, stride: int) -> torch.Tensor:
    """``[N, H, W] -> [N, H // stride, W // stride]``: the sums of ``stride x stride`` blocks (int32; the rows and
    columns past the last whole block dropped)."""
    if stride == 1:
        return counts
    n, h, w = counts.shape
    hs, ws = h // stride, w // stride
    blocks = counts[:, : hs * stride, : ws * stride].reshape(n, hs, stride, ws, stride)
    return blocks.sum(dim=(2, 4), dtype=torch.int32)

EMULATION_CHUNK = 2000
"""Images emulated at a time by :func:`emulate_frames` (its ON and OFF counts are int16 ``[chunk, S, H, W]`` each)."""


def emulate_frames(images: torch.Tensor, timesteps: int = 8, substeps: int = 4, threshold: float = 0.2,
                   pad: int = 3, amplitude: float = 7.0, eps: float = 0.1, stride: int = 1,
                   binary: bool = False, chunk: int = EMULATION_CHUNK) -> torch.Tensor:
    """Event frames of static images: ``[N, 1, H, W]`` or ``[N, H, W]`` in [0, 1] ->
    uint8 ``[N, T, 2, (H + 2 pad) // stride, (W + 2 pad) // stride]``, with ``S = T * substeps`` samples,
    computed ``chunk`` images at a time."""
    if images.dim() == 4:
        if images.shape[1] != 1:
            raise ConfigError(f"emulation needs greyscale images, got {images.shape[1]} channels")
        images = images[:, 0]  # [N, 1, H, W] -> [N, H, W]
    if substeps < 1:
        raise ConfigError(f"emulation substeps must be >= 1, got {substeps}")
    check_samples(timesteps, substeps)
    frames = None  # one tensor filled chunk by chunk: a list of chunks joined by torch.cat held the frames twice
    for start in range(0, max(1, len(images)), chunk):  # one chunk, empty, for no images
        on, off = change_events(images[start:start + chunk], timesteps * substeps, threshold, pad, amplitude, eps)
        part = counts_to_frames(on, off, timesteps, stride, binary)  # [<= chunk, T, 2, H', W']
        frames = part.new_empty((len(images), *part.shape[1:])) if frames is None else frames
        frames[start:start + len(part)] = part
    return frames


def emulate_events(image: torch.Tensor, samples: int = 32, threshold: float = 0.2, pad: int = 3,
                   amplitude: float = 7.0, eps: float = 0.1, duration_us: int = 300_000) -> np.ndarray:
    """The event stream of one image ``[H, W]`` (or ``[1, H, W]``): a structured array (``x``, ``y``, ``t``,
    ``p``) sorted by time, sample ``s`` stamped ``t_s = s * duration_us // S`` (write it with
    ``formats.write_nmnist_bin`` to build N-MNIST-like files)."""
    img = image.reshape(1, *image.shape[-2:])
    on, off = change_events(img, samples, threshold, pad, amplitude, eps)  # [1, S, H', W'] each
    pieces = []
    for counts, polarity in ((off[0], 0), (on[0], 1)):
        s, y, x = torch.nonzero(counts, as_tuple=True)
        reps = counts[s, y, x].long()
        t = (s + 1) * duration_us // samples
        pieces.append((x.repeat_interleave(reps), y.repeat_interleave(reps), t.repeat_interleave(reps),
                       torch.full((int(reps.sum()),), polarity)))
    x, y, t, p = (torch.cat(cols).numpy() for cols in zip(*pieces))
    order = np.argsort(t, kind="stable")
    return make_events(x[order], y[order], t[order], p[order])
