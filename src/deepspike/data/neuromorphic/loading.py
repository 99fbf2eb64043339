"""What every event data set shares: binning options, reading through tonic, the cache, the splits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.data.neuromorphic.cache import cache_dir, cached_arrays
from deepspike.data.neuromorphic.dataset import FRAME_STATS_CHUNK, EventFrameDataset, frame_stats
from deepspike.data.neuromorphic.formats import require_tonic
from deepspike.data.neuromorphic.frames import (
    binning_bytes,
    check_binning,
    check_frame_memory,
    check_stride,
    events_to_frames,
    frames_to_counts,
)
from deepspike.data.splits import (
    IMAGE_STATS_CHUNK,
    DataSplits,
    make_splits,
    partition_bytes,
    partition_rows,
    split_in_place,
    split_indices,
    stats_bytes,
    warn_missing_classes,
)
from deepspike.data.tensor_dataset import TensorDataset

OUTPUTS = ("frames", "counts")


@dataclass(frozen=True)
class FrameOptions:
    """How events become network input.

    timesteps: frames per sample T. time_window_ms: bin length (None: T equal bins over the recording).
    stride: spatial downsampling factor (pixel ``(x, y)`` -> ``(x // stride, y // stride)``).
    binary: frames hold 1 where at least one event fell (else the count, clipped to 255).
    denoise_ms: drop events with no other event in the 4 neighbouring pixels within this time before them (tonic's
    ``Denoise``, :func:`denoise`); None: keep all. output: ``frames`` (``[N, T, 2, H, W]``, for stbp
    ``encoder: frames``) or ``counts`` (``[N, 2, H, W]`` event-count images in [0, 1], for methods that take images).
    The time origin of the bins is no option (it is no part of the cache key): it is given per recording to
    :meth:`frames`.
    """

    timesteps: int = 10
    time_window_ms: float | None = None
    stride: int = 1
    binary: bool = False
    denoise_ms: float | None = None
    output: str = "frames"

    def __post_init__(self) -> None:
        for key, value in (("time_window_ms", self.time_window_ms), ("denoise_ms", self.denoise_ms)):
            if value is not None and (not is_finite(value) or value <= 0):
                raise ConfigError(f"data.args.{key} must be a finite number > 0 or null, got {value!r}")
        if not isinstance(self.binary, bool):
            raise ConfigError(f"data.args.binary must be true or false, got {self.binary!r}")
        check_binning(self.timesteps, self.window_us, self.stride)
        if self.output not in OUTPUTS:
            raise ConfigError(f"bad value {self.output!r} for data.args.output; valid: {', '.join(OUTPUTS)}")

    def frames(self, events: np.ndarray, sensor_hw: tuple[int, int], t0: float | None = None) -> np.ndarray:
        """Denoise (optional, :func:`denoise`) and bin one recording: ``[T, 2, H // stride, W // stride]`` uint8; the
        bins start at ``t0`` (us; default: the first event's time, see :func:`events_to_frames`)."""
        if self.denoise_ms is not None and len(events):
            events = denoise(events, self.denoise_ms * 1000.0)
        return events_to_frames(events, sensor_hw, self.timesteps, self.window_us, self.stride, self.binary, t0)

    @property
    def window_us(self) -> float | None:
        """The bin length in microseconds: the float nearest to 1000 times the decimal ``time_window_ms`` (its
        shortest ``repr``). ``time_window_ms * 1000.0`` is off by one rounding for some (16.1 ms gave
        16100.000000000002 us, so an event 16100 us after the origin fell into bin 0 instead of bin 1)."""
        ms = self.time_window_ms
        if ms is None:
            return None
        return float((Decimal(ms) if isinstance(ms, int) else Decimal(repr(float(ms)))) * 1000)

    def key(self) -> dict:
        """The options as a JSON-able dict (part of the cache key)."""
        d = asdict(self)
        d.pop("output")  # counts are derived from the cached frames
        if self.window_us is not None and self.window_us != self.time_window_ms * 1000.0:
            d["window_us"] = self.window_us  # frames cached with the misrounded window are not reused
        if self.denoise_ms is not None:
            d["denoise_from"] = "first event"  # nor frames denoised keeping every event of the first denoise_ms
        return d


def denoise(events: np.ndarray, filter_us: float) -> np.ndarray:
    """The events (``n >= 1``) that have an earlier event (or one as early, before it in the array) in one of their 4
    neighbouring pixels less than ``filter_us`` us before them: ``t_j > t_i - filter_us`` (tonic's ``denoise_numpy``,
    which walks the events in order, remembering ``t_j + filter_us`` per pixel).

    Binning does not depend on the events' order, tonic's walk does: events out of time order are sorted by time
    (stable) first (an unsorted file kept isolated events whose neighbour fired later and dropped others). tonic starts
    every pixel's memory at ``filter_us`` as if each had fired at time 0, so in recordings whose times start near 0
    (N-MNIST, DVS Gesture) every event of the first ``filter_us`` us was kept, isolated or not: the times are moved so
    that the first is at ``ceil(filter_us)`` for the walk and moved back after it. A filter longer than the recording
    (``t_last - t_first + 1`` us) keeps what that one keeps, every event with any earlier neighbour: it is cut to that
    (a ``denoise_ms`` of 1e300 overflowed the shift, an OverflowError traceback)."""
    tonic = require_tonic()
    if (np.diff(events["t"]) < 0).any():
        events = events[np.argsort(events["t"], kind="stable")]
    first = int(events["t"].min())
    filter_us = min(filter_us, float(int(events["t"].max()) - first + 1))
    shift = int(np.ceil(filter_us)) - first
    moved = events.copy()
    moved["t"] += shift
    kept = tonic.functional.denoise_numpy(moved, filter_time=filter_us)
    kept["t"] -= shift
    return kept


def local_tonic(cls: type, folder: Path, **kwargs):
    """A tonic data set reading ``folder`` as it is: never downloads.

    tonic looks for files in ``save_to/<class name>`` and downloads when its existence check fails; a
    subclass named after ``folder`` (so ``save_to/<name>`` is ``folder``) with the check switched off reads
    the real layout in place.
    """
    local = type(folder.name, (cls,), {"_check_exists": lambda self: True})
    return local(save_to=str(folder.parent), **kwargs)


def bin_all(samples: Sequence, read: Callable[[object], tuple[np.ndarray, int]], options: FrameOptions,
            sensor_hw: tuple[int, int], held: Sequence = (), reading: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Read and bin every sample: ``(x [N, T, 2, H', W'] uint8, y [N] int64)``, after :func:`check_binned` (before any
    is read; ``reading``: the most bytes reading one recording holds, :func:`reading_bytes`)."""
    h, w = check_binned(len(samples), options, sensor_hw, held, reading)
    x = np.zeros((len(samples), options.timesteps, 2, h, w), dtype=np.uint8)
    y = np.zeros(len(samples), dtype=np.int64)
    for i, sample in enumerate(samples):
        events, label = read(sample)
        x[i] = options.frames(events, sensor_hw)
        y[i] = label
    return x, y


def reading_bytes(files: Sequence[Path], per_file_byte: int) -> int:
    """The most bytes reading and binning one of ``files`` holds beside the frames, its events and every array made of
    them: ``per_file_byte`` (``formats.READ_BYTES_PER_FILE_BYTE``) times the largest file's size."""
    return per_file_byte * max((f.stat().st_size for f in files), default=0)


def check_binned(samples: int, options: FrameOptions, sensor_hw: tuple[int, int],
                 held: Sequence = (), reading: int | None = 0) -> tuple[int, int]:
    """The frame size ``(H', W')`` of ``samples`` binned recordings; a ``ConfigError`` for a stride larger than the
    sensor (:func:`check_stride`) and for frames that would not fit in memory beside the data sets ``held`` (the
    splits already loaded) and the larger of the buffers that splitting them and their statistics take
    (:func:`work_bytes`) and those of reading and binning one recording (``reading`` bytes of its events,
    :func:`reading_bytes`, and ``frames.binning_bytes``; None: frames read from the cache, nothing binned), with their
    float32 count images (``8 H' W'`` bytes a sample, made beside the frames) under ``output: counts``."""
    check_stride(options.stride, sensor_hw)
    h, w = sensor_hw[0] // options.stride, sensor_hw[1] // options.stride
    size, what = sample_bytes(options, h, w)
    work = work_bytes(options, h, w, samples + sum(len(part) for part in held))
    binning = 0 if reading is None else binning_bytes(options.timesteps * 2 * h * w)  # first: never beside the rest
    check_frame_memory(samples, size, "event frames", held_bytes(held), what, work=work, reading=reading or 0,
                       binning=binning)
    return h, w


def load_binned(name: str, data_dir, use_cache: bool, key: dict, samples: Sequence,
                read: Callable[[object], tuple[np.ndarray, int]], options: FrameOptions, sensor_hw: tuple[int, int],
                held: Sequence = (), reading: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bin_all` of ``samples`` through the cache (:func:`load_cached`), its checks (:func:`check_binned`) made
    once, before anything is read, either way: by ``bin_all`` when the frames are binned, before the entry's arrays
    are read when they come from the cache (frames read from the cache were loaded unchecked: cached as frames, read
    again as count images beside them; or a cache copied from a larger machine; no recording is read then), and an
    entry of frames of another shape than ``[N, T, 2, H', W']`` built again. Made here as well as in ``bin_all``,
    binned frames were checked twice."""
    def check(shape: tuple[int, ...]) -> bool:  # a cached entry's: the memory check, then its shape
        h, w = check_binned(len(samples), options, sensor_hw, held, None)
        return tuple(shape) == (len(samples), options.timesteps, 2, h, w)

    return load_cached(name, data_dir, use_cache, key,
                       lambda: bin_all(samples, read, options, sensor_hw, held, reading), check)


def sample_bytes(options: FrameOptions, h: int, w: int) -> tuple[int, str]:
    """``(bytes, what they hold)`` of one sample for :func:`check_frame_memory`: its ``[T, 2, h, w]`` uint8 frames,
    and under ``output: counts`` its float32 ``[2, h, w]`` count image too (``8 h w`` bytes, made beside them)."""
    if options.output == "counts":
        return options.timesteps * 2 * h * w + 8 * h * w, "frames and count images"
    return options.timesteps * 2 * h * w, "frames"


def split_bytes(options: FrameOptions, h: int, w: int, samples: int) -> int:
    """The most bytes splitting ``samples`` (all splits together) ``[T, 2, h, w]`` frames takes beside them
    (``splits.partition_bytes`` of their rows: :func:`held_out_splits` reorders the frames, ``split_in_place`` the
    frames or, under ``output: counts``, the ``8 h w``-byte count images; one after the other, never at once)."""
    frames = partition_bytes(options.timesteps * 2 * h * w, samples)
    return max(frames, partition_bytes(8 * h * w, samples)) if options.output == "counts" else frames


def work_bytes(options: FrameOptions, h: int, w: int, samples: int) -> int:
    """The most bytes the work on ``samples`` (all splits together) binned ``[T, 2, h, w]`` frames holds beside them
    after they are loaded, one step after the other: splitting them (:func:`split_bytes`), then the float64 chunk of
    their statistics (``splits.stats_bytes``: ``frame_stats`` of the frames, or ``channel_stats`` of the ``[2, h, w]``
    count images under ``output: counts``; up to 128 MiB)."""
    if options.output == "counts":
        stats = stats_bytes(2 * h * w, samples, IMAGE_STATS_CHUNK)
    else:
        stats = stats_bytes(options.timesteps * 2 * h * w, samples, FRAME_STATS_CHUNK)
    return max(split_bytes(options, h, w, samples), stats)


def held_bytes(parts: Sequence) -> int:
    """The bytes of the tensors ``x`` and ``y`` that the data sets ``parts`` hold."""
    return sum(t.element_size() * t.nelement() for part in parts for t in (part.x, part.y))


def load_cached(name: str, data_dir, use_cache: bool, key: dict, build, check=None) -> tuple[np.ndarray, np.ndarray]:
    """``cached_arrays`` under ``<data cache>/event_frames`` (or ``build()`` when ``use_cache`` is False; ``check``:
    the memory check of a cached entry, given its frames' shape, False for a shape ``build`` does not make);
    ``data.args.cache`` must be true or false (``ConfigError``: the string "no" was read as true)."""
    if not isinstance(use_cache, bool):
        raise ConfigError(f"data.args.cache must be true or false, got {use_cache!r}")
    return cached_arrays(cache_dir(data_dir) if use_cache else None, {"dataset": name, **key}, build, check)


def as_dataset(x: np.ndarray, y: np.ndarray, options: FrameOptions, name: str):
    """``EventFrameDataset`` of the frames, or a ``TensorDataset`` of count images (``output: counts``)."""
    if options.output == "counts":
        return TensorDataset(torch.from_numpy(frames_to_counts(x)), torch.from_numpy(y), name)
    return EventFrameDataset(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), name)


def event_splits(train, test, *, val_fraction: float, seed: int, class_names, name: str,
                 owned: bool = False) -> DataSplits:
    """``make_splits`` with frame statistics for frame data sets (input_shape = per-step ``(C, H, W)`` or ``(F,)``);
    ``owned``: ``train`` holds frames the loader built or read and nothing else holds, so the validation part is
    taken by reordering them in place (:func:`split_in_place`), not by copying both parts beside them."""
    stats = frame_stats if isinstance(train, EventFrameDataset) else None
    return make_splits(train, test, val_fraction=val_fraction, seed=seed, num_classes=len(class_names),
                       class_names=class_names, name=name, stats=stats, split=split_in_place if owned else None)


def held_out_splits(x: np.ndarray, y: np.ndarray, options: FrameOptions, *, test_fraction: float, split_seed: int,
                    val_fraction: float, seed: int, class_names, name: str) -> DataSplits:
    """Splits of a data set without an official test split: a FIXED seeded, stratified ``test_fraction`` of each
    class (``split_seed``, not the run's ``seed``) is the test set; frames ``x [N, T, 2, H, W]``, labels ``y [N]``
    (reordered in place, train rows first: :func:`partition_rows`; the splits are views of ``x``, where copies of both
    parts, and then of the validation split, beside ``x`` took twice the frames' memory that ``bin_all`` checked)."""
    y = torch.from_numpy(y)
    train_idx, test_idx = split_indices(y, test_fraction, split_seed)
    warn_missing_classes(y[test_idx].tolist(), class_names, f"{name}: the test split (a {test_fraction:g} of each "
                         "class)", among=y.unique().tolist())  # round(test_fraction n) = 0: at 0.1 n <= 5
    if not x.flags.writeable:
        x = x.copy()
    n = partition_rows(torch.from_numpy(x), train_idx, test_idx)
    partition_rows(y, train_idx, test_idx)
    y = y.numpy()
    train, test = as_dataset(x[:n], y[:n], options, name), as_dataset(x[n:], y[n:], options, name)
    return event_splits(train, test, val_fraction=val_fraction, seed=seed, class_names=class_names, name=name,
                        owned=True)
