"""N-MNIST (Orchard et al. 2015): MNIST digits recorded by an ATIS sensor on saccades, 34 x 34 pixels.

On disk (the official release, as tonic extracts it): ``<folder>/Train/<digit>/<id>.bin`` and
``<folder>/Test/<digit>/<id>.bin`` (60,000 / 10,000 files, 5-byte events, see :mod:`formats`). The folder
is ``data_dir`` itself or ``NMNIST``/``N-MNIST``/``nmnist`` under ``data_dir`` and each data root. Files are
listed and read by tonic's ``NMNIST`` (its download check bypassed); frames are cached.
"""

from __future__ import annotations

from pathlib import Path

from deepspike.data import paths
from deepspike.data.neuromorphic.cache import files_fingerprint
from deepspike.data.neuromorphic.formats import EVENT_DTYPE, require_tonic
from deepspike.data.neuromorphic.loading import (
    FrameOptions,
    as_dataset,
    bin_all,
    event_splits,
    load_cached,
    local_tonic,
)
from deepspike.data.registry import register_dataset
from deepspike.data.splits import DataSplits

SENSOR = (34, 34)
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


@register_dataset("nmnist")
def load_nmnist(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                timesteps: int = 10, time_window_ms: float | None = None, stride: int = 1, binary: bool = False,
                denoise_ms: float | None = None, first_saccade_only: bool = False, output: str = "frames",
                cache: bool = True) -> DataSplits:
    """N-MNIST as frames ``x [N, T, 2, 34 // stride, 34 // stride]`` (:class:`FrameOptions`), ``y`` 0..9.

    ``first_saccade_only`` keeps the first 100 ms (one of the three saccades). ``download`` is not offered
    (the files sit behind a web page): see the error message for where to get them.
    """
    options = FrameOptions(timesteps, time_window_ms, stride, binary, denoise_ms, output)
    tonic = require_tonic()
    folder = find_split_folders("nmnist", data_dir, SUBDIRS, ("Train", "Test"), HOW_TO_GET)
    parts = []
    for train in (True, False):
        ds = local_tonic(tonic.datasets.NMNIST, folder, train=train, first_saccade_only=first_saccade_only)
        ds.dtype = EVENT_DTYPE
        key = {"split": "train" if train else "test", "files": files_fingerprint(
            [Path(p) for p in ds.data]), "first_saccade_only": first_saccade_only,
            **options.key()}
        x, y = load_cached("nmnist", data_dir, cache, key,
                           lambda ds=ds: bin_all(range(len(ds)), ds.__getitem__, options, SENSOR))
        parts.append(as_dataset(x, y, options, "nmnist"))
    return event_splits(parts[0], parts[1], val_fraction=val_fraction, seed=seed,
                        class_names=[str(d) for d in range(10)], name="nmnist")
