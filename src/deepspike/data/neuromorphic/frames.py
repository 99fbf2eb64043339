"""Event streams -> dense frames: time binning, polarity channels, spatial downsampling.

An event is ``(x, y, t, p)``: pixel column ``x``, row ``y``, time ``t`` in microseconds, polarity ``p``
(1 = ON, brightness up; 0 = OFF). Frames are ``[T, 2, H', W']`` with channel 0 = OFF and 1 = ON and
``H' = H // stride``, ``W' = W // stride`` (wu2019: 128 -> 42 with stride 3; events of the cut-off last
rows/columns are dropped).

Time bins, from the time origin ``t0``: the first event's time by default, or a given ``t0`` (SHD/SSC: 0, the
recording's start; events before a given ``t0`` are dropped):

* ``time_window`` (us) given: event goes to bin ``k = floor((t - t0) / time_window)``; bins ``k >= T`` are
  dropped (the first ``T * time_window`` us of the recording are kept, as wu2019's 5 ms windows);
* otherwise ``[t0, t_last]`` is cut into ``T`` equal bins: ``k = floor((t - t0) * T / (max(t_last, t0) - t0 + 1))``.

The value of a frame pixel is the number of events that fell into it (clipped to 255 for ``uint8``
storage), or 1/0 with ``binary=True``.
"""

from __future__ import annotations

import numpy as np

from deepspike.core.errors import ConfigError
from deepspike.core.memory import GiB, check_fits_memory, physical_memory
from deepspike.core.options import is_finite, is_whole
from deepspike.data.augment import MAX_SIZE


def check_binning(timesteps: int, time_window: float | None, stride: int) -> None:
    """Raise :class:`ConfigError` unless ``timesteps`` and ``stride`` are integers from 1 to ``MAX_SIZE`` and
    ``time_window`` is a finite number > 0 or None (a string or a float step count crashed numpy; a billion steps
    asked numpy for terabytes)."""
    for name, value in (("timesteps", timesteps), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= MAX_SIZE:
            raise ConfigError(f"event frames: {name} must be an integer from 1 to {MAX_SIZE}, got {value!r}")
    if time_window is not None and (not is_finite(time_window) or time_window <= 0):
        raise ConfigError(f"event frames: time window must be a finite number > 0 (or null for equal bins), got "
                          f"{time_window!r}")


def check_stride(stride: int, sensor_hw: tuple[int, int]) -> None:
    """A one-line :class:`ConfigError` unless ``stride`` is at most the sensor's shorter side: a larger one gave frames
    of ``H // stride = 0`` rows or columns, every event dropped."""
    if stride > min(sensor_hw):
        raise ConfigError(f"event frames: data.args.stride={stride} is larger than the {sensor_hw[0]} x {sensor_hw[1]} "
                          f"sensor (frames of 0 pixels); at most {min(sensor_hw)}")


def frame_shape(sensor_hw: tuple[int, int], num_classes: int):
    """``register_dataset``'s ``shape`` of an event data set binned on the ``sensor_hw`` pixels: per step
    ``(2, H // stride, W // stride)`` (``output`` frames and counts alike), ``num_classes`` classes; None for a
    stride the loader refuses (``FrameOptions``, ``check_stride``)."""
    def shape(stride: object = 1, **_: object) -> tuple[tuple[int, ...], int] | None:
        if not is_whole(stride, 1, min(sensor_hw)):
            return None
        return (2, sensor_hw[0] // stride, sensor_hw[1] // stride), num_classes
    return shape


def check_frame_memory(samples: int, frame_bytes: int, name: str, held: int = 0, what: str = "frames",
                       held_what: str = "frames", work: int = 0, reading: int = 0, binning: int = 0,
                       reading_remedy: str = "split or remove the largest recording") -> None:
    """A one-line :class:`ConfigError` when ``samples`` frame tensors of ``frame_bytes`` each (``what`` they hold),
    beside the ``held`` bytes of ``held_what`` already loaded (an earlier split's frames, the source images of
    emulated events) and the larger of the ``work`` bytes of the buffers that splitting them and their statistics take
    (``splits.partition_bytes``, ``splits.stats_bytes``) and the ``reading + binning`` bytes of reading one recording's
    events and binning it (before the rest), would take more than this machine's memory, before numpy is asked for it.
    The message names the buffers counted and a remedy for the largest term: ``reading_remedy`` where the events read
    are (timesteps and stride do not change them), else fewer timesteps or a larger stride."""
    beside = f" beside the {held / GiB:.1f} GiB of {held_what} already held" if held else ""
    buffers = max(work, reading + binning)
    if buffers == work:
        counted = f" and {work:,} bytes of buffers to split them and take their statistics" if work else ""
    else:
        counted = f" and {buffers:,} bytes of buffers to read one recording's events and bin them"
    if reading > max(samples * frame_bytes, held, work, binning):
        remedy = f"its events read take {reading:,} bytes, which timesteps and stride do not change; {reading_remedy}"
    else:
        remedy = "take fewer timesteps or a larger stride"
    check_fits_memory(samples * frame_bytes + held + buffers, physical_memory(), lambda need, have: (
        f"{name}: {samples:,} samples of {frame_bytes:,} bytes of {what}{beside}{counted} need {need} GiB, more "
        f"than this machine's {have} GiB; {remedy}"))


def events_to_frames(events: np.ndarray, sensor_hw: tuple[int, int], timesteps: int,
                     time_window: float | None = None, stride: int = 1, binary: bool = False,
                     t0: float | None = None) -> np.ndarray:
    """Bin a structured event array (fields ``x``, ``y``, ``t``, ``p``) into ``uint8`` frames.

    ``frames[k, p, y // stride, x // stride] = min(255, #events in bin k)`` (module docstring), shape
    ``[T, 2, H // stride, W // stride]``; all-zero for an empty recording. Bins start at ``t0`` (us), by
    default the first event's time. One ``np.bincount``, no loop; its int64 counts are the largest temporary
    (:func:`binning_bytes`).
    """
    check_binning(timesteps, time_window, stride)
    h, w = sensor_hw[0] // stride, sensor_hw[1] // stride
    out_size = timesteps * 2 * h * w
    if len(events) == 0:
        return np.zeros((timesteps, 2, h, w), dtype=np.uint8)
    t = events["t"].astype(np.float64)
    t0 = t.min() if t0 is None else float(t0)
    if time_window is not None:
        k = np.floor((t - t0) / time_window).astype(np.int64)
    else:
        k = np.floor((t - t0) * timesteps / (max(t.max(), t0) - t0 + 1.0)).astype(np.int64)
    x = events["x"].astype(np.int64) // stride
    y = events["y"].astype(np.int64) // stride
    p = (events["p"].astype(np.int64) > 0).astype(np.int64)
    keep = (k >= 0) & (k < timesteps) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
    flat = ((k[keep] * 2 + p[keep]) * h + y[keep]) * w + x[keep]
    counts = np.bincount(flat, minlength=out_size).reshape(timesteps, 2, h, w)  # [T, 2, H', W'] int64
    np.minimum(counts, 1 if binary else 255, out=counts)  # in place: a clipped int64 copy (two with binary) was made
    return counts.astype(np.uint8)


def binning_bytes(frame_values: int) -> int:
    """The most bytes :func:`events_to_frames` holds for one recording of ``frame_values = T * 2 * H' * W'`` values
    beside the events: the int64 counts of ``np.bincount`` and the uint8 frames cast from them, ``9 * frame_values``
    (measured peak with 1,000 events, 100 x 2 x 128 x 128: 9.0 x; clipped into int64 copies it was 17 x, uncounted by
    the memory checks, the peak of loading where a float64 statistics chunk holds one or two samples). The events'
    own arrays and the reader's, per recording, are not counted (about 60 bytes an event here)."""
    return 9 * frame_values


def frames_to_counts(frames: np.ndarray) -> np.ndarray:
    """``[N, T, 2, H, W]`` frames -> float32 event-count images ``[N, 2, H, W]`` in [0, 1].

    ``img[n] = sum_t frames[n, t] / max(1, max over (c, h, w) of that sum)`` (per-sample scaling), the
    static input for methods that take images (``spikebp``, conversion, ANN). Summed in float32 as it goes: a float32
    copy of all the frames took 4 times the frames' bytes, past the memory check that counted them; scaled in place
    (a second array of the images took their bytes again). The images, ``8 H W`` bytes a sample, are counted by
    ``bin_all``'s memory check beside the frames.
    """
    total = frames.sum(axis=1, dtype=np.float32)  # [N, T, 2, H, W] -> [N, 2, H, W], exact (sums < 2^24), no float copy
    peak = total.reshape(len(total), -1).max(axis=1, initial=0.0)  # [N]
    total /= np.maximum(peak, 1.0)[:, None, None, None]
    return total
