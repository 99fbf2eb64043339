"""Emulated event versions of static data sets: ``fashion_mnist_events``, ``mnist_events``, ``digits_events``.

Each image becomes N-MNIST-like event frames through :mod:`emulation` (saccades, log-intensity change
events, ON/OFF channels). Frames are cached under ``<data cache>/event_frames`` (key: the options and a
SHA-1 of the source images and of their labels), so only the first run pays for the emulation.
"""

from __future__ import annotations

import hashlib

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.memory import GiB, check_fits_memory, physical_memory
from deepspike.core.options import is_finite, is_whole
from deepspike.data.augment import MAX_SIZE
from deepspike.data.neuromorphic.emulation import EMULATION_CHUNK, check_samples, check_threshold, emulate_frames
from deepspike.data.neuromorphic.frames import check_frame_memory, check_stride, frame_shape
from deepspike.data.neuromorphic.loading import (
    FrameOptions,
    as_dataset,
    event_splits,
    held_bytes,
    load_cached,
    sample_bytes,
    work_bytes,
)
from deepspike.data.registry import declared_shape, load_dataset, register_dataset
from deepspike.data.splits import DataSplits


def _digest(x: torch.Tensor) -> str:
    """SHA-1 of the bytes of ``x`` (C order), read in place: ``tobytes()`` held a copy of the source images (188 MB
    for Fashion-MNIST's training images) beside them while they were hashed."""
    return hashlib.sha1(x.contiguous().reshape(-1).view(torch.uint8).numpy()).hexdigest()


MAX_SUBSTEPS = 1024


def check_emulation(substeps: int, threshold: float, pad: int, amplitude: float) -> None:
    """One-line :class:`ConfigError` unless ``substeps`` is an integer from 1 to ``MAX_SUBSTEPS``, ``pad`` one from 0
    to ``MAX_SIZE``, ``threshold`` a finite number from ``emulation.MIN_THRESHOLD`` up and ``amplitude`` a finite number
    >= 0."""
    integers = (("substeps", substeps, 1, MAX_SUBSTEPS), ("pad", pad, 0, MAX_SIZE))
    for key, value, low, high in integers:
        if not is_whole(value, low, high):
            raise ConfigError(f"emulation: {key} must be an integer from {low} to {high}, got {value!r}")
    check_threshold(threshold)
    if not (is_finite(amplitude) and amplitude >= 0):
        raise ConfigError(f"emulation: amplitude must be a finite number >= 0, got {amplitude!r}")


def check_emulation_memory(images: int, samples: int, sensor: tuple[int, int], name: str, timesteps: int = 0,
                           held: int = 0, stride: int = 1) -> None:
    """A one-line :class:`ConfigError` when one chunk of the emulation (``c = min(images, EMULATION_CHUNK)`` images,
    ``P = c H W`` pixels of the full sensor, ``Q = c (H // stride) (W // stride)`` of the frames) and the ``held``
    bytes beside it (the frames of both splits and the source images) would take more than this machine's memory:
    its ON and OFF counts (int16 ``[c, S, H, W]`` each, ``S = timesteps * substeps`` position samples: ``4 S P``
    bytes) and the larger of ``change_events``' float32 working arrays (six of ``[c, H, W]``: canvas, reference and
    new level, crossings and two temporaries, ``24 P``) and ``counts_to_frames``' (the chunk's uint8 frames, two int32
    frame sums while the next is zeroed, ``(2 T + 16) Q``, and a cast, ``2 Q``, or, with ``stride > 1``, an int16 copy
    of a sample and its int32 block sums, ``2 P + 4 Q``); measured peaks (2000 images of a 34 x 34 sensor, 3 to 32
    samples, 1 to 16 steps, stride 1 to 3) are 0.5 to 13 % below it. It counted ``8 T P`` for the frames alone: at
    ``timesteps=1`` half the peak besides the counts (57 of 88 MiB in all), twice it at 16 steps.
    ``check_frame_memory`` sees only the frames, and ``timesteps=1000, substeps=1024`` asked torch for 577 GB of
    counts (a RuntimeError traceback)."""
    c = min(images, EMULATION_CHUNK)
    pixels, pooled = c * sensor[0] * sensor[1], c * (sensor[0] // stride) * (sensor[1] // stride)
    counts = pixels * samples * 4
    frames = (2 * timesteps + 16) * pooled + (2 * pixels + 4 * pooled if stride > 1 else 2 * pooled)
    beside = held + max(24 * pixels, frames)
    check_fits_memory(counts + beside, physical_memory(), lambda need, have: (
        f"{name}: emulating {samples:,} position samples (timesteps x substeps) on a {sensor[0]} x {sensor[1]} "
        f"sensor needs {counts / GiB:.1f} GiB of event counts beside {beside / GiB:.1f} GiB of working arrays, frames "
        f"and source images, {need} GiB in all, more than this machine's {have} GiB; take fewer timesteps or "
        f"substeps"))


def emulated_splits(source: str, data_dir, val_fraction: float, seed: int, download: bool, timesteps: int,
                    substeps: int, threshold: float, pad: int, amplitude: float, stride: int, binary: bool,
                    output: str, cache: bool) -> DataSplits:
    """Load ``source``, emulate event frames for its train and test images, and split."""
    options = FrameOptions(timesteps=timesteps, stride=stride, binary=binary, output=output)
    check_emulation(substeps, threshold, pad, amplitude)
    check_samples(timesteps, substeps)
    static = load_dataset(source, data_dir=data_dir, download=download)
    name = f"{source}_events"
    sensor = tuple(size + 2 * pad for size in static.input_shape[-2:])
    check_stride(stride, sensor)
    height, width = (size // stride for size in sensor)
    size, what = sample_bytes(options, height, width)
    sources = held_bytes([part for part in (static.train, static.val, static.test) if part is not None])
    samples = len(static.train) + len(static.test)  # all held
    work = work_bytes(options, height, width, samples)
    check_frame_memory(samples, size, name, sources, what, "source images", work)
    held = sources + samples * size
    parts = []
    for split in (static.train, static.test):
        key = {"source": _digest(split.x), "labels": _digest(split.y), "substeps": substeps, "threshold": threshold,
               "pad": pad, "amplitude": amplitude, **options.key()}

        def build(split=split):  # only here are the counts made: a cached entry needs none
            check_emulation_memory(max(len(static.train), len(static.test)), timesteps * substeps, sensor, name,
                                   timesteps, held, stride)
            frames = emulate_frames(split.x, timesteps, substeps, threshold, pad, amplitude, stride=stride,
                                    binary=binary)
            return frames.numpy(), split.y.numpy()

        x, y = load_cached(name, data_dir, cache, key, build,  # an entry of other frames than build's: built again
                           lambda shape, split=split: tuple(shape) == (len(split), timesteps, 2, height, width))
        parts.append(as_dataset(x, y, options, name))
    return event_splits(parts[0], parts[1], val_fraction=val_fraction, seed=seed,
                        class_names=static.class_names, name=name, owned=True)


def _declared(source: str):
    """``register_dataset``'s ``shape`` of ``{source}_events``: per step ``(2, (H + 2 pad) // stride, (W + 2 pad) //
    stride)`` of the source's declared ``H x W`` and classes; None for options ``emulated_splits`` refuses."""
    def shape(pad: object = 3, stride: object = 1, **_: object) -> tuple[tuple[int, ...], int] | None:
        static = declared_shape(source, {})
        if static is None or not is_whole(pad, 0, MAX_SIZE):
            return None
        return frame_shape(tuple(size + 2 * pad for size in static[0][-2:]), static[1])(stride=stride)
    return shape


def _register(source: str, doc: str):
    @register_dataset(f"{source}_events", shape=_declared(source))
    def loader(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
               timesteps: int = 8, substeps: int = 4, threshold: float = 0.2, pad: int = 3,
               amplitude: float = 7.0, stride: int = 1, binary: bool = False, output: str = "frames",
               cache: bool = True) -> DataSplits:
        return emulated_splits(source, data_dir, val_fraction, seed, download, timesteps, substeps, threshold,
                               pad, amplitude, stride, binary, output, cache)

    loader.__name__ = f"load_{source}_events"
    loader.__doc__ = (f"{doc} as emulated event frames ``x [N, T, 2, H + 2 pad, W + 2 pad]`` (stride 1): "
                      "T frames of ``substeps`` saccade samples each, contrast threshold ``threshold`` "
                      "(log units), ``pad`` pixels of border, saccade triangle of ``amplitude`` pixels.")
    return loader


load_fashion_mnist_events = _register("fashion_mnist", "Fashion-MNIST (28 x 28 -> 34 x 34)")
load_mnist_events = _register("mnist", "MNIST (28 x 28 -> 34 x 34)")
load_digits_events = _register("digits", "scikit-learn's 8 x 8 digits (-> 14 x 14)")
