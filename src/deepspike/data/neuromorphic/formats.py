"""The on-disk event formats of N-MNIST, CIFAR10-DVS and DVS Gesture: readers and writers.

Events are numpy structured arrays with fields ``x``, ``y``, ``t`` (microseconds), ``p`` (1 = ON, 0 = OFF).

* N-MNIST ``.bin``: 5 bytes per event, big-endian bit fields ``[x:8][y:8][p:1][t:23]`` (t in us). A record
  with ``y = 240`` is a time-overflow marker, no event: it adds 2^13 us to its own and every later time (Orchard's
  ``eventvision.py``, tonic's ``read_mnist_file``), read here with one cumulative sum in int64.
* CIFAR10-DVS ``.aedat`` (AEDAT 2.0, jAER DVS128): header lines starting with ``#`` (the first is
  ``#!AER-DAT2.0``, lines end in CR LF), then big-endian ``uint32`` pairs ``(address, timestamp us)``;
  address bits: polarity = bit 0 (jAER's DVS128: raw 0 is ON, 1 is OFF), x = bits 1-7, y = bits 8-14 (128 x 128
  sensor, raw sensor coordinates), bit 15 set marks a special (external / sync) event, not a pixel: dropped.
* DVS Gesture ``.npy`` (tonic's preprocessed release): ``float``/``int`` array ``[n, 4]`` with columns
  ``x, y, p, t`` and ``t`` in milliseconds; one file per gesture, named ``<label>.npy``, inside
  ``user<NN>_<lighting>/`` folders.

The AEDAT reader needs the extra ``deepspike[neuromorphic]`` (tonic); the other readers and the writers are plain
numpy (the writers are used by the tests and by :mod:`emulation` to write N-MNIST-like files).
"""

from __future__ import annotations

import os
import tokenize
from pathlib import Path

import numpy as np

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.core.memory import GiB
from deepspike.core.messages import warn
from deepspike.core.optional import require_package
from deepspike.data.paths import check_regular_file, one_line

EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
NMNIST_MAX_T = (1 << 23) - 1
NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_US = 1 << 13
ATIS_SENSOR = (240, 304)  # (H, W) pixels of the ATIS that recorded N-MNIST and N-Caltech101
AEDAT2_HEADER = b"#!AER-DAT2.0\r\n"
MAX_GESTURE_MS = 1e12  # microseconds of later times would not fit int64
READ_BYTES_PER_FILE_BYTE = {"nmnist": 24, "aedat2": 12, "gesture": 4}
"""The most bytes reading and binning one recording holds (its events, the reader's arrays and those binning makes of
the events), per byte of its file: measured with tracemalloc on recordings of 10^6 events, 119 bytes an event for
N-MNIST's 5-byte records (23.8 x), 94 for AEDAT 2.0's 8 bytes (11.8 x), 128 for DVS Gesture's float64 ``[n, 4]``
rows (4.0 x). A DVS Gesture recording of 10^6 events (32 MB) held 128 MB, beside frames of 41 KB."""
NPY_ERRORS = (OSError, ValueError, EOFError, MemoryError, tokenize.TokenError)
"""What ``np.load`` raises for a damaged ``.npy``: a header whose brackets do not close raised tokenize's TokenError,
one whose shape claims more than the machine has MemoryError (numpy allocates the claim before reading)."""


def require_tonic():
    """Import tonic or raise :class:`ConfigError` saying how to install it."""
    return require_package("tonic", "event data sets need tonic: pip install 'deepspike[neuromorphic]'")


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array (:data:`EVENT_DTYPE`) from four equal-length sequences."""
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def _as_events(events: np.ndarray) -> np.ndarray:
    return make_events(events["x"], events["y"], events["t"], events["p"])


def write_nmnist_bin(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write events as an N-MNIST ``.bin`` file (5 bytes each; needs 0 <= x, y < 240, t < 2^23 us)."""
    ev = _as_events(events)
    if len(ev) and (ev["x"].min() < 0 or ev["x"].max() > 255 or ev["y"].min() < 0 or ev["y"].max() >= 240
                    or ev["t"].min() < 0 or ev["t"].max() > NMNIST_MAX_T):
        raise ConfigError(f"N-MNIST .bin holds 0 <= x <= 255, 0 <= y < 240, 0 <= t < 2^23 us; {path}")
    t = ev["t"].astype(np.uint32)
    raw = np.empty((len(ev), 5), dtype=np.uint8)  # [n, 5] bytes per event
    raw[:, 0] = ev["x"]
    raw[:, 1] = ev["y"]
    raw[:, 2] = ((ev["p"] > 0).astype(np.uint32) << 7 | (t >> 16) & 0x7F).astype(np.uint8)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    Path(path).write_bytes(raw.tobytes())


def decode_nmnist(raw: bytes) -> np.ndarray:
    """The events of N-MNIST ``.bin`` bytes (a whole number of 5-byte records; module docstring).

    Record ``i``: ``x = b0``, ``y = b1``, ``p = b2 >> 7``, ``t = (b2 & 0x7F) << 16 | b3 << 8 | b4`` plus 2^13 us for
    every overflow marker (``y = 240``) among records ``0..i``; markers are dropped. tonic's reader adds each marker's
    2^13 to the rest of the file in a Python loop (quadratic: 200,000 markers, a 1 MB file, took 7.5 s, and a
    10 MB one hangs for minutes) in uint32 (wrapping after 2^19 markers); the cumulative sum here is linear, int64.
    """
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)  # [n, 5] bytes per record
    t = (rec[:, 2] & 0x7F) << 16 | rec[:, 3] << 8 | rec[:, 4]
    overflow = rec[:, 1] == NMNIST_OVERFLOW_Y
    t = t + NMNIST_OVERFLOW_US * np.cumsum(overflow)  # a marker counts for its own record and every later one
    keep = ~overflow
    return make_events(rec[keep, 0], rec[keep, 1], t[keep], rec[keep, 2] >> 7)


def read_nmnist_bin(path: str | os.PathLike, sensor_hw: tuple[int, int] = ATIS_SENSOR) -> np.ndarray:
    """Read an N-MNIST (or N-Caltech101) ``.bin`` file (:func:`decode_nmnist`); a path that is no regular file, a
    size that is not a multiple of 5 bytes or an event outside the ``sensor_hw = (H, W)`` pixels (N-MNIST: 34 x 34; by
    default the ATIS's 240 x 304, so y = 241..255 is no pixel) is a one-line :class:`DataCorruptError`: any file of
    5k bytes decodes, and random bytes (a file of another format) were read as a recording of its few events that fell
    inside the sensor."""
    check_regular_file(path)
    try:
        raw = Path(path).read_bytes()
        if len(raw) % 5:
            raise DataCorruptError(f"{path}: N-MNIST .bin size {len(raw)} is not a multiple of 5 bytes")
        events = decode_nmnist(raw)
    except MemoryError as e:
        raise out_of_memory(path, "nmnist") from e
    except OSError as e:
        raise DataCorruptError(f"{path}: cannot read ({one_line(e)})") from e
    outside = np.flatnonzero((events["y"] >= sensor_hw[0]) | (events["x"] >= sensor_hw[1]))
    if len(outside):
        i = outside[0]
        raise DataCorruptError(f"{path}: {len(outside)} of {len(events)} events lie outside the {sensor_hw[0]} x "
                               f"{sensor_hw[1]} sensor (event {i} at x={events['x'][i]}, y={events['y'][i]}): not an "
                               f"N-MNIST-format .bin recording")
    return events


def warn_empty_bins(files: list[Path], what: str) -> None:
    """One warning line on stderr naming (the first three of) ``files`` that are empty (0 bytes): an N-MNIST-format
    ``.bin`` of no events is a valid file (an emulated recording of a blank image) and bins as all-zero frames, but in a
    release it is almost surely a cut download, and it was read in silence (``what``: the data set and split)."""
    empty = [f for f in files if f.is_file() and f.stat().st_size == 0]
    if empty:
        more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
        warn(f"{what}: {len(empty)} of {len(files)} recordings are empty files (0 bytes: no "
             f"events; a cut download?), binned as all-zero frames: {', '.join(map(str, empty[:3]))}{more}")


def write_aedat2(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write DVS128 events (0 <= x, y < 128) as an AEDAT 2.0 file (module docstring)."""
    ev = _as_events(events)
    if len(ev) and (ev["x"].min() < 0 or ev["x"].max() > 127 or ev["y"].min() < 0 or ev["y"].max() > 127):
        raise ConfigError(f"DVS128 addresses need 0 <= x, y <= 127; {path}")
    address = (ev["y"] << 8 | ev["x"] << 1 | (ev["p"] <= 0)).astype(">u4")  # raw polarity 0 = ON
    pairs = np.empty((len(ev), 2), dtype=">u4")  # [n, (address, timestamp)]
    pairs[:, 0] = address
    pairs[:, 1] = ev["t"].astype(np.uint32)
    header = AEDAT2_HEADER + b"# This is a raw AE data file - do not edit\r\n"
    Path(path).write_bytes(header + pairs.tobytes())


def aedat_data_start(path: str | os.PathLike) -> int:
    """The byte offset of an AEDAT file's first event: just after its header lines, each starting with ``#``.
    (tonic's header parser gives one byte less when the file ends with its header: a recording of no events read as
    "1 byte of data, a cut file".)"""
    with open(path, "rb") as f:
        while f.peek(1)[:1] == b"#":
            f.readline()
        return f.tell()


def read_aedat2(path: str | os.PathLike) -> np.ndarray:
    """Read a DVS128 AEDAT 2.0 file (tonic's version parser and AER reader, the data start of
    :func:`aedat_data_start`; address bits decoded here); a header-only file holds no events. An empty file (no
    header: tonic's parser seeks before its start, an OSError "[Errno 22] Invalid argument" that named no file) or
    one the system cannot read is a one-line :class:`DataCorruptError` naming it."""
    tonic = require_tonic()
    check_regular_file(path)
    if os.path.getsize(path) == 0:
        raise DataCorruptError(f"{path}: an empty file, not AEDAT 2.0 (a CIFAR10-DVS recording starts with its "
                               f"#!AER-DAT2.0 header)")
    try:
        version, _, _ = tonic.io.read_aedat_header_from_file(str(path))
        start = aedat_data_start(path)
        if not 2 <= version < 3:
            raise DataCorruptError(f"{path}: AEDAT version {version}; CIFAR10-DVS files are AEDAT 2.0")
        if (os.path.getsize(path) - start) % 8:
            raise DataCorruptError(f"{path}: AEDAT 2.0 data of {os.path.getsize(path) - start} bytes is not whole "
                                   f"8-byte events (a cut file?)")
        raw = tonic.io.get_aer_events_from_file(str(path), version, start)
        return decode_aedat2(raw)
    except DataCorruptError:
        raise
    except MemoryError as e:  # a direct call: the loaders' memory check (reading_bytes) came before theirs
        raise out_of_memory(path, "aedat2") from e
    except (ValueError, IndexError, UnboundLocalError, AssertionError) as e:
        raise DataCorruptError(f"{path}: not an AEDAT 2.0 file ({one_line(e)})") from e
    except OSError as e:
        raise DataCorruptError(f"{path}: cannot read ({one_line(e)})") from e


def decode_aedat2(raw: np.ndarray) -> np.ndarray:
    """The events of tonic's AER records ``raw`` (fields ``address``, ``timeStamp``; module docstring), special events
    (bit 15 set) dropped."""
    addr = raw["address"].astype(np.int64)
    pixel = (addr & 0x8000) == 0  # bit 15: a special event
    addr = addr[pixel]
    return make_events((addr >> 1) & 0x7F, (addr >> 8) & 0x7F, raw["timeStamp"][pixel].astype(np.int64),
                       1 - (addr & 1))


def out_of_memory(path: str | os.PathLike, fmt: str) -> ConfigError:
    """The one-line error for a recording whose events did not fit in memory while read (a ``MemoryError`` traceback
    before): its size and the bytes reading takes per file byte (:data:`READ_BYTES_PER_FILE_BYTE`)."""
    size, per_byte = os.path.getsize(path), READ_BYTES_PER_FILE_BYTE[fmt]
    return ConfigError(f"{path}: its {size:,} bytes of events did not fit in memory while read (reading takes up to "
                       f"{per_byte} bytes per byte of the file, {per_byte * size / GiB:.1f} GiB); free memory, or "
                       "split or remove this recording")


def read_gesture_npy(path: str | os.PathLike) -> np.ndarray:
    """Read one DVS Gesture ``.npy`` (module docstring: columns x, y, p, t in ms) as events with ``t`` in us; a file
    that does not load as a plain ``[n, 4]`` array of finite real numbers (integers or floats: complex values lost their
    imaginary part in silence), with 0 <= x, y <= 127, p in {0, 1} and t >= 0, is a one-line :class:`DataCorruptError`
    (never unpickled), as is a path that is no regular file."""
    check_regular_file(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except MemoryError as e:  # a sound file too large for the memory left is no damaged file (:func:`npy_holds_data`)
        if npy_holds_data(path):
            raise out_of_memory(path, "gesture") from e
        raise DataCorruptError(f"{path}: not a readable .npy file ({one_line(e)})") from e
    except NPY_ERRORS as e:
        raise DataCorruptError(f"{path}: not a readable .npy file ({one_line(e)})") from e
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.dtype.kind not in "iuf":  # complex and timedelta are numpy numbers
        raise DataCorruptError(f"{path}: DVS Gesture events must be an [n, 4] numeric array (x, y, p, t), got shape "
                               f"{list(arr.shape)} of {arr.dtype}")
    x, y, p, t = (arr[:, i].astype(np.float64) for i in range(4))
    if len(arr) and not (np.isfinite(arr).all() and min(x.min(), y.min(), t.min()) >= 0 and max(x.max(), y.max())
                         <= 127 and np.isin(p, (0, 1)).all() and t.max() <= MAX_GESTURE_MS):
        raise DataCorruptError(f"{path}: DVS Gesture events need finite 0 <= x, y <= 127, p in {{0, 1}} and "
                               f"0 <= t <= {MAX_GESTURE_MS:.0e} ms")
    return make_events(x.astype(np.int64), y.astype(np.int64), (t * 1000).astype(np.int64), p.astype(np.int64))


def npy_holds_data(path: str | os.PathLike) -> bool:
    """Whether the ``.npy`` at ``path`` holds the bytes its header announces (its shape times its item size after the
    header): False for a header that cannot be read or claims more than the file holds (a damaged file)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
            return int(np.prod(shape, dtype=object)) * dtype.itemsize <= os.path.getsize(path) - f.tell()
    except (*NPY_ERRORS, SyntaxError, TypeError):
        return False


def write_gesture_npy(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write events as a DVS Gesture ``.npy`` (columns x, y, p, t with t in ms, as tonic's release)."""
    ev = _as_events(events)
    arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000], axis=1).astype(np.float64)  # [n, 4]
    np.save(path, arr)
