"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) (Cramer et al. 2020): spoken words turned into
spikes of 700 channels by a model of the inner ear.

On disk (the official release, extracted): HDF5 files ``shd_train.h5``, ``shd_test.h5`` (SHD: 20 classes, the digits
0-9 spoken in English and German) and ``ssc_train.h5``, ``ssc_valid.h5``, ``ssc_test.h5`` (SSC: 35 words). Each
holds ``spikes/times`` (one variable-length float array per recording: spike times in seconds from the start of the
recording), ``spikes/units`` (variable-length unsigned ints, the channel 0..699 of each spike), ``labels`` (uint16
``[N]``) and ``extra/...`` (``keys``: the class names, ``speaker``, ...). The folder is ``data_dir`` itself or
``SHD``/``shd``/``hsd`` (``SSC``/``ssc``/``hsd``) under ``data_dir`` and each data root. The release ships them
zipped (``.h5.zip``; older mirrors ``.h5.gz``): deepspike reads only the extracted ``.h5`` and says so when it finds
just the archive (HDF5 needs random access; extracting is one ``unzip``/``gunzip``). Files are read with h5py (the
``neuromorphic`` extra): plain arrays, no code is run. Recordings are checked (times finite and >= 0, channels
0..699, as many times as channels, labels 0..classes-1; recordings that point at one stored spike train, giving more
bytes than the file holds, are refused as they are read); a file that breaks a rule is refused in one line naming it.

Frames ``x [N, T, F]`` (uint8 counts, cast to float32 per batch), ``F = 700 // stride``: channel ``c`` goes to
feature ``c // stride``, the last ``700 % stride`` channels are dropped when ``stride`` does not divide 700. Time
bins start at the recording's start (t = 0, NOT at the first spike as for the camera data sets):

* ``time_window_ms`` given (default 10 ms, T = 100: the first second): spike at ``t`` goes to bin
  ``floor(t / window)``, spikes at ``t >= T * window`` are dropped;
* ``time_window_ms: null``: T equal bins over ``[0, last spike]``, ``k = floor(t * T / (t_last + 1 us))``.

Times are first truncated to whole microseconds (as tonic's reader does). A frame holds the number of spikes of its
channel group in its bin (clipped to 255), or 1/0 with ``binary``. ``DataSplits.input_shape`` is the per-step
``(F,)`` and ``split.timesteps`` is T; ``mean``/``std`` are per feature (F values). Only ``output: frames`` is
offered. Splits: SHD's official train/test files (``val_fraction`` of train, stratified and seeded, is ``val``);
SSC's official train/valid/test files, the valid file is always ``val`` (a nonzero ``val_fraction`` is refused).
Frames are cached under the data cache (``event_frames``) keyed by the file's name, size and modification time and
the options.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.core.hdf5_heaps import damaged_global_heap
from deepspike.core.optional import require_package
from deepspike.core.options import is_whole
from deepspike.data import paths
from deepspike.data.neuromorphic.cache import files_fingerprint
from deepspike.data.neuromorphic.dataset import FRAME_STATS_CHUNK, EventFrameDataset, frame_stats
from deepspike.data.neuromorphic.formats import make_events
from deepspike.data.neuromorphic.frames import binning_bytes, check_frame_memory
from deepspike.data.neuromorphic.loading import FrameOptions, held_bytes, load_cached
from deepspike.data.paths import one_line
from deepspike.data.registry import register_dataset
from deepspike.data.splits import (
    DataSplits,
    make_splits,
    partition_bytes,
    split_in_place,
    stats_bytes,
    warn_missing_classes,
)

CHANNELS = 700
FILES = {"shd": ("shd_train.h5", "shd_test.h5"), "ssc": ("ssc_train.h5", "ssc_valid.h5", "ssc_test.h5")}
NUM_CLASSES = {"shd": 20, "ssc": 35}
SUBDIRS = {"shd": ("SHD", "shd", "hsd"), "ssc": ("SSC", "ssc", "hsd")}
ARCHIVES = (".zip", ".gz")
HOW_TO_GET = ("download {files} (.h5.zip) from https://zenkelab.org/datasets/ (see https://zenkelab.org/resources/"
              "spiking-heidelberg-datasets-shd/) and extract the .h5 files into one of these")


def require_h5py():
    """Import h5py or raise :class:`ConfigError` saying how to install it."""
    return require_package("h5py", "SHD/SSC files are HDF5 and need h5py: pip install 'deepspike[neuromorphic]'")


def find_release(name: str, data_dir) -> list[Path]:
    """The paths of ``FILES[name]`` in the first candidate folder that holds all of them; a one-line
    :class:`DataNotFoundError` otherwise, which names a ``.h5.zip``/``.h5.gz`` found instead (to extract)."""
    places = paths.candidate_dirs(data_dir, SUBDIRS[name])
    how = HOW_TO_GET.format(files=", ".join(FILES[name]))
    try:
        return paths.find_files(name, [[f] for f in FILES[name]], places, how)
    except DataNotFoundError as e:
        packed = [d / (f + a) for d in places for f in FILES[name] for a in ARCHIVES if (d / (f + a)).is_file()]
        if packed:
            raise DataNotFoundError(f"{name}: found {packed[0]} but deepspike reads the extracted .h5 files: "
                                    f"extract it next to it (unzip / gunzip); {one_line(e)}") from e
        raise


def _open_checked(h5py, path: Path):
    """``h5py.File(path, "r")`` after the global heaps that hold the ragged spike arrays were walked as libhdf5 would
    walk them (``core.hdf5_heaps``): a crafted heap that would make libhdf5 loop is a one-line
    :class:`DataCorruptError` instead of a hang."""
    damaged = damaged_global_heap(str(path))
    if damaged is not None:
        raise DataCorruptError(f"{path}: {damaged}")
    return h5py.File(path, "r")


def read_release_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(times, units, labels)`` of one SHD/SSC file: object arrays ``[N]`` of per-recording arrays, labels ``[N]``.

    A file that is no HDF5 file or lacks one of the three datasets is a one-line :class:`DataCorruptError`.
    """
    h5py = require_h5py()
    names = ("spikes/times", "spikes/units", "labels")
    try:
        with _open_checked(h5py, path) as f:
            missing = [n for n in names if not isinstance(f.get(n), h5py.Dataset)]
            if missing:
                raise DataCorruptError(f"{path}: not an SHD/SSC file: no dataset {', '.join(missing)}")
            _check_claimed_sizes(path, {n: (f[n].shape, f[n].dtype.itemsize) for n in names})
            for n in names[:2]:
                check_sequence_type(h5py, path, n, f[n].id.get_type())
            times, units = (read_ragged(path, f[n], n) for n in names[:2])
            labels = f["labels"][()]
    except DataCorruptError:
        raise
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as e:
        raise DataCorruptError(f"{path}: not a readable SHD/SSC HDF5 file ({one_line(e)})") from e
    return np.asarray(times, dtype=object), np.asarray(units, dtype=object), np.asarray(labels)


VLEN_CLASS, VLEN_SEQUENCE, VLEN_TEXT = 9, 0, 1
"""The HDF5 type class of variable-length data, and its two kinds: sequences (ragged arrays) and text."""


def vlen_kind(type_id) -> int | None:
    """The kind of a variable-length HDF5 type (``VLEN_SEQUENCE``, ``VLEN_TEXT``; libhdf5 takes any value its 4 bits
    hold, and h5py's read of a dataset of kind 6, one flipped byte of a real file, crashed the process: a segmentation
    fault), None for a type of another class. Read from the type's serialisation (``H5Tencode``: the message id 3, a
    version byte, then the datatype message: class and version, three bytes of class bits, the kind the low 4 bits of
    the first)."""
    encoded = type_id.encode()
    return encoded[3] & 0x0F if encoded[2] & 0x0F == VLEN_CLASS else None


def check_sequence_type(h5py, path: Path, name: str, type_id) -> None:
    """A one-line :class:`DataCorruptError` unless the HDF5 type ``type_id`` of dataset ``name`` is the release's:
    variable-length sequences (:func:`vlen_kind`) of integers or floats, checked before any is read."""
    kind = vlen_kind(type_id)
    if kind not in (None, VLEN_SEQUENCE):
        raise DataCorruptError(f"{path}: dataset {name} has a damaged type (variable-length of kind {kind}; an "
                               "SHD/SSC file holds sequences of numbers, kind 0)")
    if kind is None or type_id.get_super().get_class() not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        what = "no variable-length dataset" if kind is None else "variable-length of other values than numbers"
        raise DataCorruptError(f"{path}: dataset {name} is {what}; an SHD/SSC file holds one list of numbers per "
                               "recording")


RAGGED_SLICE = 256
"""Recordings read at a time by :func:`read_ragged` (one at a time is ten times slower)."""


def read_ragged(path: Path, dataset, name: str) -> np.ndarray:
    """The ragged 1-D ``dataset`` (``spikes/times`` or ``spikes/units``) as an object array ``[N]`` of its arrays, read
    ``RAGGED_SLICE`` recordings at a time; a one-line :class:`DataCorruptError` once they hold more bytes than the file.

    Each recording's values are stored whole in a global heap (never compressed), so a real file holds every byte it
    gives; but many recordings may point at one heap object: a 371 KB file gave 2,000 recordings of the same 20,000
    spikes (320 MB), a 4 MB one 32 GB. The check stops such a file after one slice too many.
    """
    size, total = os.path.getsize(path), 0
    out = np.empty(dataset.shape[0], dtype=object)
    for start in range(0, len(out), RAGGED_SLICE):
        part = dataset[start:start + RAGGED_SLICE]
        total += sum(np.asarray(a).nbytes for a in part)
        if total > size:
            raise DataCorruptError(f"{path}: {name} of recordings {start} to {start + len(part) - 1} takes "
                                   f"{total:,} bytes so far in a file of {size:,}: recordings share their stored "
                                   "spikes (a crafted file)")
        out[start:start + len(part)] = part
    return out


def _check_claimed_sizes(path: Path, shapes: dict[str, tuple[tuple[int, ...], int]]) -> None:
    """A one-line :class:`DataCorruptError` for a dataset (``name: (shape, bytes per entry)``) that is not 1-D or
    claims more bytes than the file has (HDF5 lets a few KB of chunked storage claim terabytes of fill values, in many
    entries or in entries of a huge array type: 2 labels of 10^8 uint16 each, a 9 KB file, took 400 MB to refuse):
    checked before anything is read. A stored entry takes at least its bytes (a ragged one: its 16-byte reference)."""
    size = os.path.getsize(path)
    for name, (shape, itemsize) in shapes.items():
        if len(shape) != 1 or shape[0] * itemsize > size:
            raise DataCorruptError(f"{path}: dataset {name} of shape {list(shape)} in a file of {size:,} bytes "
                                   f"({itemsize:,} bytes per entry); an SHD/SSC file holds one entry per recording")


def checked_labels(path: Path, labels: np.ndarray, recordings: int, num_classes: int) -> np.ndarray:
    """``labels`` as int64 ``[N]``, or a one-line :class:`DataCorruptError` naming ``path``."""
    if labels.ndim != 1 or len(labels) != recordings:
        raise DataCorruptError(f"{path}: labels of shape {list(labels.shape)} for {recordings} recordings")
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise DataCorruptError(f"{path}: labels are {labels.dtype}, not integers")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataCorruptError(f"{path}: labels run from {labels.min()} to {labels.max()}; "
                               f"with {num_classes} classes they must be 0 to {num_classes - 1}")
    return labels.astype(np.int64)


MAX_SECONDS = 1e9
"""The latest spike time read (s): microseconds of later ones would not fit the events' int64 (1e14 s wrapped to
a negative time and the spike was dropped); a recording of 30 years is no recording."""


def recording_problem(times: np.ndarray, units: np.ndarray) -> str | None:
    """What is wrong with one recording's spike ``times`` (s) and channel ``units``, else None."""
    if times.ndim != 1 or units.ndim != 1:
        return f"spike times and channels must be lists, got shapes {list(times.shape)} and {list(units.shape)}"
    if len(times) != len(units):
        return f"{len(times)} spike times but {len(units)} channels"
    if not len(times):
        return None
    if not (np.issubdtype(times.dtype, np.floating) or np.issubdtype(times.dtype, np.integer)):
        return f"spike times are {times.dtype}, not numbers"
    if not np.issubdtype(units.dtype, np.integer):
        return f"channels are {units.dtype}, not integers"
    if not (np.isfinite(times).all() and times.min() >= 0 and times.max() <= MAX_SECONDS):
        return f"spike times must be finite, >= 0 and <= {MAX_SECONDS:.0e} (seconds from the start)"
    if units.min() < 0 or units.max() >= CHANNELS:
        return f"channels run from {units.min()} to {units.max()}; they must be 0 to {CHANNELS - 1}"
    return None


def recording_frames(path: Path, index: int, times, units, options: FrameOptions) -> np.ndarray:
    """One checked recording as frames ``[T, 700 // stride]`` uint8 (module docstring for the bins).

    Binned by :meth:`FrameOptions.frames` as a sensor of one row (spike -> event ``x = channel``, ``y = 0``,
    ON, ``t`` in whole us; the sensor is ``stride`` rows high so that row 0 stays one row), with the time origin
    ``t0 = 0`` so that the bins start at the recording's start.
    """
    times, units = np.asarray(times), np.asarray(units)
    problem = recording_problem(times, units)
    if problem:
        raise DataCorruptError(f"{path}: recording {index}: {problem}")
    spikes = make_events(units, 0, times.astype(np.float64) * 1e6, 1)
    frames = options.frames(spikes, (options.stride, CHANNELS), t0=0)  # [T, 2, 1, F]
    return frames[:, 1, 0, :]


SPIKES_PER_FILE_BYTE = 1.25
"""The bytes the spike times and channels read from a file hold while its recordings are binned, per byte of the file
(measured as the process's peak: 1.14 x a 60 MB file of 2,000 recordings; h5py's arrays, which tracemalloc does not
see)."""


def check_release_memory(path: Path, samples: int, options: FrameOptions, held: Sequence = (),
                         binned: bool = True) -> None:
    """``check_frame_memory`` of ``samples`` recordings of ``path`` binned, beside the data sets ``held`` (the files
    already loaded) and the buffers that splitting them all takes (``splits.partition_bytes``: SHD's validation
    split is taken in place; SSC's files, never split, are counted alike) or, after that, their statistics
    (``splits.stats_bytes`` of ``frame_stats``), or, before them, the file's spikes read and binning one recording
    (``SPIKES_PER_FILE_BYTE`` times the file's size and ``frames.binning_bytes`` of its ``[T, 2, 1, F]`` frames), unless
    the frames are read from the cache (``binned`` False)."""
    row = options.timesteps * (CHANNELS // options.stride)
    rows = samples + sum(len(part) for part in held)
    reading = int(SPIKES_PER_FILE_BYTE * os.path.getsize(path)) if binned else 0
    work = max(partition_bytes(row, rows), stats_bytes(row, rows, FRAME_STATS_CHUNK))
    check_frame_memory(samples, row, f"{path}", held_bytes(held), work=work, reading=reading,
                       binning=binning_bytes(2 * row) if binned else 0,
                       reading_remedy="the file's spikes are read whole: a machine with more memory is needed")


def check_cached(path: Path, shape: tuple[int, ...], options: FrameOptions, held: Sequence = ()) -> bool:
    """:func:`check_release_memory` of a cached entry of ``path`` whose frames have ``shape``; False (the entry is built
    again) unless that is ``[N, T, 700 // stride]``."""
    check_release_memory(path, shape[0], options, held, binned=False)
    return tuple(shape[1:]) == (options.timesteps, CHANNELS // options.stride)


def bin_release_file(path: Path, options: FrameOptions, num_classes: int, held: Sequence = ()
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Read, check and bin one file: ``(x [N, T, 700 // stride] uint8, y [N] int64)``; frames that would not fit in
    memory beside the data sets ``held`` (the files already loaded) are a one-line ``ConfigError``."""
    times, units, labels = read_release_file(path)
    if times.ndim != 1 or units.ndim != 1 or len(times) != len(units):
        raise DataCorruptError(f"{path}: spikes/times of shape {list(times.shape)} but spikes/units of shape "
                               f"{list(units.shape)}; both must hold one list per recording")
    y = checked_labels(path, labels, len(times), num_classes)
    check_release_memory(path, len(times), options, held)
    x = np.zeros((len(times), options.timesteps, CHANNELS // options.stride), dtype=np.uint8)
    for i, (t, u) in enumerate(zip(times, units)):
        x[i] = recording_frames(path, i, t, u, options)
    return x, y


def class_names(path: Path, num_classes: int) -> list[str]:
    """The ``extra/keys`` of ``path`` when it holds ``num_classes`` names, else ``"0"``, ``"1"``, ... (a dataset of
    another size is not read: one claiming 2^40 names asked numpy for 8 TiB, a MemoryError traceback; nor one of
    another type than text, fixed or variable-length: a damaged variable-length kind crashed h5py's read)."""
    h5py = require_h5py()
    try:
        with _open_checked(h5py, path) as f:
            ds = f.get("extra/keys")
            kind = ds.id.get_type() if isinstance(ds, h5py.Dataset) else None
            text = kind is not None and kind.get_class() == h5py.h5t.STRING and vlen_kind(kind) in (None, VLEN_TEXT)
            keys = ds[()] if text and ds.size == num_classes else []
        names = [k.decode() if isinstance(k, bytes) else str(k) for k in np.asarray(keys).ravel()]
    except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError):
        names = []
    return names if len(names) == num_classes else [str(c) for c in range(num_classes)]


def release_splits(name: str, data_dir, download: bool, cache: bool, options: FrameOptions
                   ) -> tuple[list[EventFrameDataset], list[str]]:
    """Every file of ``FILES[name]`` as an :class:`EventFrameDataset` ``x [N, T, F]`` (in that order) and the class
    names; a file that holds no recording of a class is a warning on stderr naming them
    (``splits.warn_missing_classes``, as the camera data sets warn: it was silent)."""
    if download:
        raise DataNotFoundError(f"{name} cannot be downloaded by deepspike: "
                                f"{HOW_TO_GET.format(files=', '.join(FILES[name]))}")
    if options.output != "frames":
        raise ConfigError(f"{name} gives frames [N, T, F] only: data.args.output must be frames, got "
                          f"{options.output!r} (count vectors [N, F] are not offered)")
    if options.stride > CHANNELS:
        raise ConfigError(f"{name} has {CHANNELS} channels: data.args.stride must be 1..{CHANNELS}, got "
                          f"{options.stride}")
    files = find_release(name, data_dir)
    parts = []
    for path in files:
        key = {"split": path.name, "files": files_fingerprint([path]), **options.key()}
        held = tuple(parts)
        x, y = load_cached(name, data_dir, cache, key,
                           lambda path=path, held=held: bin_release_file(path, options, NUM_CLASSES[name], held),
                           lambda shape, path=path, held=held: check_cached(path, shape, options, held))
        parts.append(EventFrameDataset(torch.from_numpy(x), torch.from_numpy(y), name))
    names = class_names(files[0], NUM_CLASSES[name])
    for path, part in zip(files, parts):
        if len(part):  # a file of no recordings: refused or reported by the loader
            warn_missing_classes(part.y.tolist(), names, f"{name}: {path}")
    return parts, names


def _declared(name: str):
    """``register_dataset``'s ``shape`` of ``name`` (shd, ssc): per step ``(700 // stride,)``; None for the options
    ``release_splits`` refuses."""
    def shape(stride: object = 1, output: object = "frames", **_: object) -> tuple[tuple[int, ...], int] | None:
        if output != "frames" or not is_whole(stride, 1, CHANNELS):
            return None
        return (CHANNELS // stride,), NUM_CLASSES[name]
    return shape


@register_dataset("shd", shape=_declared("shd"))
def load_shd(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
             timesteps: int = 100, time_window_ms: float | None = 10.0, stride: int = 1, binary: bool = False,
             output: str = "frames", cache: bool = True) -> DataSplits:
    """SHD as frames ``x [N, T, 700 // stride]`` (module docstring; default 100 bins of 10 ms), ``y`` 0..19; the
    official train/test files, ``val_fraction`` of train (stratified, seeded) as ``val``. ``download`` is not
    offered: the error message says where to get the files."""
    options = FrameOptions(timesteps, time_window_ms, stride, binary, None, output)
    (train, test), names = release_splits("shd", data_dir, download, cache, options)
    return make_splits(train, test, val_fraction=val_fraction, seed=seed, num_classes=NUM_CLASSES["shd"],
                       class_names=names, name="shd", stats=frame_stats, split=split_in_place)  # no copy of train


@register_dataset("ssc", shape=_declared("ssc"))
def load_ssc(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
             timesteps: int = 100, time_window_ms: float | None = 10.0, stride: int = 1, binary: bool = False,
             output: str = "frames", cache: bool = True) -> DataSplits:
    """SSC as frames ``x [N, T, 700 // stride]`` (module docstring; default 100 bins of 10 ms), ``y`` 0..34; the
    official train/valid/test files, the valid file always being ``val`` (``val_fraction`` must be 0)."""
    if val_fraction:
        raise ConfigError(f"ssc has an official validation file (ssc_valid.h5), always its val split: "
                          f"data.val_fraction must be 0, got {val_fraction}")
    options = FrameOptions(timesteps, time_window_ms, stride, binary, None, output)
    (train, valid, test), names = release_splits("ssc", data_dir, download, cache, options)
    splits = make_splits(train, test, val_fraction=0.0, seed=seed, num_classes=NUM_CLASSES["ssc"],
                         class_names=names, name="ssc", stats=frame_stats)
    if not len(valid):
        raise DataCorruptError("ssc: the validation file ssc_valid.h5 holds no recordings (it is the val split)")
    return dataclasses.replace(splits, val=valid)


__all__ = ["FILES", "load_shd", "load_ssc", "read_release_file"]
