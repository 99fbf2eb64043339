"""CIFAR10-DVS (Li et al. 2017): CIFAR-10 images moving on a screen, recorded by a DVS128 (128 x 128).

On disk (the original release): ``<folder>/<class>/*.aedat`` (AEDAT 2.0, see :mod:`formats`), one folder
per class (airplane .. truck), 1,000 recordings each. The folder is ``data_dir`` itself or
``CIFAR10DVS``/``CIFAR10-DVS``/``cifar10_dvs`` under ``data_dir`` and each data root.

There is no official test split: a FIXED seeded, stratified 9:1 split (``split_seed``, default 0; not
the run's seed) takes 10 % of each class as the test set. Default frames follow wu2019: 5 ms windows
and 128 -> 42 pixels (stride 3).
"""

from __future__ import annotations

from pathlib import Path

from deepspike.data import paths
from deepspike.data.neuromorphic.cache import files_fingerprint
from deepspike.data.neuromorphic.formats import READ_BYTES_PER_FILE_BYTE, read_aedat2
from deepspike.data.neuromorphic.frames import frame_shape
from deepspike.data.neuromorphic.loading import FrameOptions, held_out_splits, load_binned, reading_bytes
from deepspike.data.registry import register_dataset
from deepspike.data.splits import DataSplits, check_split_seed, warn_missing_classes

SENSOR = (128, 128)
SUBDIRS = ("CIFAR10DVS", "CIFAR10-DVS", "cifar10_dvs")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TEST_FRACTION = 0.1
HOW_TO_GET = "download the CIFAR10-DVS .aedat release (figshare) and extract one folder per class into one of these"


def list_recordings(data_dir) -> list[tuple[Path, int]]:
    """``(file, label)`` of every ``<class>/*.aedat`` in the first folder that has all ten class folders; a class folder
    without recordings is a warning on stderr naming it (``splits.warn_missing_classes``: it was silent)."""
    places = paths.candidate_dirs(data_dir, SUBDIRS)
    for folder in places:
        if all((folder / c).is_dir() for c in CLASSES):
            found = [(f, label) for label, c in enumerate(CLASSES) for f in sorted((folder / c).glob("*.aedat"))]
            warn_missing_classes([label for _, label in found], CLASSES, f"cifar10_dvs: {folder}")
            return found
    raise paths.not_found("cifar10_dvs", "one folder per class (" + ", ".join(CLASSES) + ")", places,
                          HOW_TO_GET)


@register_dataset("cifar10_dvs", shape=frame_shape(SENSOR, len(CLASSES)))
def load_cifar10_dvs(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                     timesteps: int = 10, time_window_ms: float | None = 5.0, stride: int = 3,
                     binary: bool = False, denoise_ms: float | None = None, output: str = "frames",
                     split_seed: int = 0, cache: bool = True) -> DataSplits:
    """CIFAR10-DVS as frames ``x [N, T, 2, 128 // stride, 128 // stride]``, ``y`` in 0..9, split 9:1."""
    options = FrameOptions(timesteps, time_window_ms, stride, binary, denoise_ms, output)
    check_split_seed(split_seed)
    recordings = list_recordings(data_dir)
    key = {"files": files_fingerprint([f for f, _ in recordings]), **options.key()}
    x, y = load_binned("cifar10_dvs", data_dir, cache, key, recordings, lambda r: (read_aedat2(r[0]), r[1]), options,
                       SENSOR, reading=reading_bytes([f for f, _ in recordings], READ_BYTES_PER_FILE_BYTE["aedat2"]))
    return held_out_splits(x, y, options, test_fraction=TEST_FRACTION, split_seed=split_seed,
                           val_fraction=val_fraction, seed=seed, class_names=CLASSES, name="cifar10_dvs")


__all__ = ["CLASSES", "list_recordings", "load_cifar10_dvs"]
