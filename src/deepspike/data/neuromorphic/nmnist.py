"""N-MNIST (Orchard et al. 2015): MNIST digits recorded by an ATIS sensor on saccades, 34 x 34 pixels.

On disk (the official release, as tonic extracts it): ``<folder>/Train/<digit>/<id>.bin`` and
``<folder>/Test/<digit>/<id>.bin`` (60,000 / 10,000 files, 5-byte events, see :mod:`formats`). The folder
is ``data_dir`` itself or ``NMNIST``/``N-MNIST``/``nmnist`` under ``data_dir`` and each data root. The digit
folders' files are listed in name order and read by ``formats.read_nmnist_bin`` (tonic's reading of the records, the
file size checked first, then every event's pixel inside the 34 x 34 sensor); frames are cached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.data import paths
from deepspike.data.neuromorphic.cache import files_fingerprint
from deepspike.data.neuromorphic.formats import READ_BYTES_PER_FILE_BYTE, read_nmnist_bin, warn_empty_bins
from deepspike.data.neuromorphic.frames import frame_shape
from deepspike.data.neuromorphic.loading import FrameOptions, as_dataset, event_splits, load_binned, reading_bytes
from deepspike.data.registry import register_dataset
from deepspike.data.splits import DataSplits, warn_missing_classes

SENSOR = (34, 34)
FIRST_SACCADE_US = 100_000
SUBDIRS = ("NMNIST", "N-MNIST", "nmnist")
HOW_TO_GET = ("download Train.zip/Test.zip from https://www.garrickorchard.com/datasets/n-mnist and extract "
              "them into one of these (Train/<digit>/*.bin, Test/<digit>/*.bin)")


def find_split_folders(dataset: str, data_dir, subdirs, splits: tuple[str, ...], how_to_get: str):
    """The first candidate folder that has every one of ``splits`` as a subfolder."""
    places = paths.candidate_dirs(data_dir, subdirs)
    for folder in places:
        if all((folder / s).is_dir() for s in splits):
            return folder
    raise paths.not_found(dataset, "/".join(splits) + " folders", places, how_to_get)


def list_recordings(folder: Path, split: str) -> list[tuple[Path, int]]:
    """``[(file, digit), ...]``: every ``<folder>/<split>/<digit>/*.bin``, digit folders 0 to 9 in order, files
    sorted by name (the order does not depend on the file system); other folders are not read. A digit folder that is
    missing (or no folder: a broken link) is a one-line :class:`DataCorruptError` (the release holds all ten; it was
    read as no recordings), an empty one a warning on stderr naming its digit (``splits.warn_missing_classes``), as are
    empty (0-byte) files (``formats.warn_empty_bins``)."""
    missing = [str(d) for d in range(10) if not (folder / split / str(d)).is_dir()]
    if missing:
        raise DataCorruptError(f"nmnist: {folder / split} lacks the digit folder(s) {', '.join(missing)} (or they are "
                               f"no folders); the N-MNIST release holds {split}/0 to {split}/9")
    recordings = [(f, d) for d in range(10) for f in sorted((folder / split / str(d)).glob("*.bin"))]
    warn_missing_classes([d for _, d in recordings], [str(d) for d in range(10)], f"nmnist: the {split} split")
    warn_empty_bins([f for f, _ in recordings], f"nmnist: the {split} split")
    return recordings


def read_recording(recording: tuple[Path, int], first_saccade_only: bool) -> tuple[np.ndarray, int]:
    """The events of one recording (``formats.read_nmnist_bin``: a cut file is a one-line error), the first 100 ms
    only with ``first_saccade_only``, and its digit."""
    path, digit = recording
    events = read_nmnist_bin(path, SENSOR)
    return (events[events["t"] < FIRST_SACCADE_US] if first_saccade_only else events), digit


@register_dataset("nmnist", shape=frame_shape(SENSOR, 10))
def load_nmnist(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                timesteps: int = 10, time_window_ms: float | None = None, stride: int = 1, binary: bool = False,
                denoise_ms: float | None = None, first_saccade_only: bool = False, output: str = "frames",
                cache: bool = True) -> DataSplits:
    """N-MNIST as frames ``x [N, T, 2, 34 // stride, 34 // stride]`` (:class:`FrameOptions`), ``y`` 0..9.

    ``first_saccade_only`` keeps the first 100 ms (one of the three saccades). ``download`` is not offered
    (the files sit behind a web page): see the error message for where to get them.
    """
    options = FrameOptions(timesteps, time_window_ms, stride, binary, denoise_ms, output)
    if not isinstance(first_saccade_only, bool):  # the string "false" was true: only the first saccade was kept
        raise ConfigError(f"data.args.first_saccade_only must be true or false, got {first_saccade_only!r}")
    folder = find_split_folders("nmnist", data_dir, SUBDIRS, ("Train", "Test"), HOW_TO_GET)
    parts = []
    for split in ("Train", "Test"):
        recordings = list_recordings(folder, split)
        key = {"split": split.lower(), "files": files_fingerprint([f for f, _ in recordings]),
               "first_saccade_only": first_saccade_only, "listing": "sorted", **options.key()}
        arrays = load_binned("nmnist", data_dir, cache, key, recordings,
                             lambda rec: read_recording(rec, first_saccade_only), options, SENSOR, parts,
                             reading_bytes([f for f, _ in recordings], READ_BYTES_PER_FILE_BYTE["nmnist"]))
        parts.append(as_dataset(*arrays, options, "nmnist"))
        del arrays  # output: counts: the frames go now, not while the next split is binned beside them (unchecked)
    return event_splits(parts[0], parts[1], val_fraction=val_fraction, seed=seed,
                        class_names=[str(d) for d in range(10)], name="nmnist", owned=True)
