"""N-Caltech101 (Orchard et al. 2015): Caltech101 images moved in front of an ATIS sensor by three saccades.

On disk (the official release, as tonic extracts it): ``<folder>/<category>/image_XXXX.bin``, one folder per
category (101 object categories and ``BACKGROUND_Google``), 8,709 recordings in N-MNIST's 5-byte ``.bin`` events
(:mod:`formats`). The folder is ``data_dir`` itself or ``Caltech101``/``NCALTECH101``/``N-Caltech101``/``ncaltech101``
under ``data_dir`` and each data root; the classes are its category folders that hold ``.bin`` files, sorted by name
(as tonic's ``NCALTECH101`` lists them), the background category included.

The images were scaled to fit the sensor's 240 x 180 pixels, so recordings differ in size; every one is binned on
the full sensor (``H = 180``, ``W = 240``; events outside it are dropped). There is no official test split: a FIXED
seeded, stratified 9:1 split (``split_seed``, default 0; not the run's seed) takes 10 % of each category as the test
set. Default frames: T = 10 equal bins of each recording, 180 x 240 -> 45 x 60 pixels (stride 4).
"""

from __future__ import annotations

from pathlib import Path

from deepspike.core.errors import DataNotFoundError
from deepspike.core.messages import warn
from deepspike.data import paths
from deepspike.data.neuromorphic.cache import files_fingerprint
from deepspike.data.neuromorphic.formats import READ_BYTES_PER_FILE_BYTE, read_nmnist_bin, warn_empty_bins
from deepspike.data.neuromorphic.loading import FrameOptions, held_out_splits, load_binned, reading_bytes
from deepspike.data.registry import register_dataset
from deepspike.data.splits import DataSplits, check_split_seed

SENSOR = (180, 240)
SUBDIRS = ("Caltech101", "NCALTECH101", "N-Caltech101", "ncaltech101")
TEST_FRACTION = 0.1
HOW_TO_GET = ("download Caltech101.zip from https://www.garrickorchard.com/datasets/n-caltech101 and extract it "
              "into one of these (<category>/image_XXXX.bin)")


def list_recordings(data_dir) -> tuple[list[tuple[Path, int]], list[str]]:
    """``([(file, label), ...], categories)``: every ``<category>/*.bin`` of the first candidate folder with at least
    two category folders holding ``.bin`` files; labels index the sorted categories. Its other folders (no ``.bin``:
    left out, one class fewer) and empty (0-byte) recordings (``formats.warn_empty_bins``) are a one-line warning on
    stderr naming them, and a broken link among its entries a
    one-line :class:`DataCorruptError` (both were skipped without a word)."""
    places = paths.candidate_dirs(data_dir, SUBDIRS)
    for folder in places:
        if not folder.is_dir():
            continue
        categories = sorted(d.name for d in folder.iterdir() if d.is_dir() and any(d.glob("*.bin")))
        if len(categories) >= 2:
            check_left_out(folder, categories)
            files = [(f, label) for label, c in enumerate(categories) for f in sorted((folder / c).glob("*.bin"))]
            warn_empty_bins([f for f, _ in files], f"ncaltech101: {folder}")
            return files, categories
    raise paths.not_found("ncaltech101", "at least two category folders of .bin recordings", places, HOW_TO_GET)


def check_left_out(folder: Path, categories: list[str]) -> None:
    """Refuse broken links in ``folder`` and warn of its folders that are not ``categories`` (no ``.bin`` files)."""
    paths.check_no_broken_links(folder, "ncaltech101")
    empty = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name[:1] != "." and d.name not in categories)
    if empty:
        warn(f"ncaltech101: {folder}: {len(empty)} folder(s) hold no .bin recordings and are left out "
             f"({len(categories)} categories remain): {', '.join(empty)}")


@register_dataset("ncaltech101")
def load_ncaltech101(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                     timesteps: int = 10, time_window_ms: float | None = None, stride: int = 4,
                     binary: bool = False, denoise_ms: float | None = None, output: str = "frames",
                     split_seed: int = 0, cache: bool = True) -> DataSplits:
    """N-Caltech101 as frames ``x [N, T, 2, 180 // stride, 240 // stride]`` (:class:`FrameOptions`), ``y`` the
    category index, split 9:1 per category (module docstring). ``download`` is not offered (the files sit behind a
    web page): the error message says where to get them."""
    if download:
        raise DataNotFoundError(f"ncaltech101 cannot be downloaded by deepspike: {HOW_TO_GET}")
    options = FrameOptions(timesteps, time_window_ms, stride, binary, denoise_ms, output)
    check_split_seed(split_seed)
    recordings, categories = list_recordings(data_dir)
    key = {"files": files_fingerprint([f for f, _ in recordings]), **options.key()}
    reading = reading_bytes([f for f, _ in recordings], READ_BYTES_PER_FILE_BYTE["nmnist"])
    x, y = load_binned("ncaltech101", data_dir, cache, key, recordings, lambda r: (read_nmnist_bin(r[0]), r[1]),
                       options, SENSOR, reading=reading)
    return held_out_splits(x, y, options, test_fraction=TEST_FRACTION, split_seed=split_seed,
                           val_fraction=val_fraction, seed=seed, class_names=categories, name="ncaltech101")


__all__ = ["list_recordings", "load_ncaltech101"]
