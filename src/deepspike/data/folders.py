"""Registered image-folder data sets: ``imagefolder`` (any folder) and ``caltech`` (Caltech 101)."""

from __future__ import annotations

from pathlib import Path

from deepspike.core.errors import ConfigError, DataNotFoundError
from deepspike.core.memory import GiB, check_fits_memory, physical_memory
from deepspike.data import paths
from deepspike.data.image_folder import (
    check_loading_options,
    check_split_options,
    class_folders,
    decoded_bytes,
    read_image_folder,
    sampled_stats,
)
from deepspike.data.registry import register_dataset
from deepspike.data.splits import DataSplits, make_splits, splitting_bytes, stats_bytes

CALTECH_SUBDIRS = ("101_ObjectCategories", "caltech101/101_ObjectCategories",
                   "caltech-101/101_ObjectCategories", "Caltech101/101_ObjectCategories", "caltech101")
CALTECH_BACKGROUND = "BACKGROUND_Google"


def _finish(train, test, names, *, name, val_fraction, seed, in_memory, memory_limit_gb, stats_samples,
            empty_test_ok):
    """Load both splits into memory (asked for, or when they fit ``memory_limit_gb``) or keep them
    streaming, then split off validation data; streamed data gets its statistics from a sample.
    ``empty_test_ok``: the user asked for no test images (``test_fraction=0``)."""
    check_loading_options(train.grayscale, in_memory, memory_limit_gb, stats_samples)
    if in_memory is None:
        in_memory = decoded_bytes(train) + decoded_bytes(test) <= memory_limit_gb * GiB
    check_decode_memory(train, test, in_memory, stats_samples, name, val_fraction)
    if in_memory:
        train, test = train.load(), test.load()
    stats = None if in_memory else (lambda ds: sampled_stats(ds, stats_samples, seed))
    return make_splits(train, test, val_fraction=val_fraction, seed=seed, num_classes=len(names),
                       class_names=names, name=name, stats=stats, empty_test_ok=empty_test_ok)


def check_decode_memory(train, test, in_memory: bool, stats_samples: int, name: str,
                        val_fraction: float = 0.0) -> None:
    """A one-line ``ConfigError`` when decoding would take more than this machine's memory, before any image is decoded:
    in memory, both splits as float32 (4 bytes a value) and the larger of one split's uint8 copy and float32
    intermediate (5 more) and what ``make_splits`` holds beside them (``splits.splitting_bytes``: the copies of the
    training images that a validation part takes and the float64 chunk of their statistics); streamed, the
    ``stats_samples`` training images the statistics load (9 bytes a value while decoded, then 4 and the statistics'
    float64 chunk). ``size=[65536, 65536]`` asked numpy for 48 GiB (a MemoryError traceback), ``in_memory: true`` at
    40000 x 40000 was killed for memory; the validation copy and the statistics chunk were not counted."""
    per_image = decoded_bytes(train) // max(1, len(train))  # float32 bytes of one image
    values = per_image // 4
    if in_memory:
        split = splitting_bytes(per_image, len(train), values, val_fraction)
        need = decoded_bytes(train) + decoded_bytes(test) + max(5 * max(len(train), len(test)) * values, split)
    else:
        k = min(stats_samples, len(train))
        need = max(9 * k * values, 4 * k * values + stats_bytes(values, k))
    check_fits_memory(need, physical_memory(), lambda need, have: (
        f"{name}: decoding its {train.shape[0]} x {train.shape[1]} x {train.shape[2]} images needs {need} GiB, more "
        f"than this machine's {have} GiB; set data.args.size smaller"
        f"{', or data.args.in_memory: false' if in_memory else ''}"))


@register_dataset("imagefolder")
def load_image_folder(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                      size=32, grayscale: bool = False, classes=None, test_fraction: float = 0.2,
                      train_per_class: int | None = None, split_seed: int = 0, in_memory: bool | None = None,
                      memory_limit_gb: float = 2.0, stats_samples: int = 2000) -> DataSplits:
    """Images from ``data_dir`` in ImageNet layout (``train/<class>/*`` + ``val/<class>/*`` or ``test/``)
    or as ``<class>/*`` folders split per class (``train_per_class`` or ``test_fraction``, seeded by the
    fixed ``split_seed``), resized to ``size`` (int or [H, W]). ``mean``/``std`` of streamed folders are
    estimated from ``stats_samples`` training images. There is nothing to download."""
    if not data_dir:
        raise ConfigError("imagefolder needs data_dir (recipe: data.data_dir=PATH): the image folder")
    root = paths.expand(data_dir)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"  # a file was said not to exist
        raise DataNotFoundError(f"imagefolder: {root} {what}; point data_dir at a folder of "
                                "<class>/<image> or train/<class>/<image> + val/<class>/<image> files")
    train, test, names = read_image_folder(root, "imagefolder", size, grayscale, classes, test_fraction,
                                           train_per_class, split_seed)
    return _finish(train, test, names, name="imagefolder", val_fraction=val_fraction, seed=seed,
                   in_memory=in_memory, memory_limit_gb=memory_limit_gb, stats_samples=stats_samples,
                   empty_test_ok=test_fraction == 0)


def find_caltech(data_dir, classes) -> Path:
    """The first ``101_ObjectCategories``-like folder that holds the wanted class folders."""
    places = paths.candidate_dirs(data_dir, CALTECH_SUBDIRS)
    for place in places:
        if place.is_dir():
            found = class_folders(place)
            if (classes is None and found) or (classes is not None and all(c in found for c in classes)):
                return place
    what = f"class folders {', '.join(classes)}" if classes else "class folders"
    raise paths.not_found("caltech", f"101_ObjectCategories/<class>/*.jpg ({what})", places,
                          "download Caltech 101 from https://data.caltech.edu/records/mzrjq-6wc02 and unpack "
                          "101_ObjectCategories into one of these (or set data_dir)")


@register_dataset("caltech")
def load_caltech(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                 classes=("Faces_easy", "Motorbikes"), size=(160, 250), grayscale: bool = True,
                 train_per_class: int | None = 250, test_fraction: float = 0.2, split_seed: int = 0,
                 in_memory: bool | None = None, memory_limit_gb: float = 2.0,
                 stats_samples: int = 2000) -> DataSplits:
    """Caltech 101 (``101_ObjectCategories/<class>/*.jpg``), by default zhang2021's face/motorbike task:
    classes ``Faces_easy`` and ``Motorbikes``, grey, resized to 160 x 250 (H x W), 250 random training images
    per class (``val_fraction=0.2`` makes that 200 train + 50 validation, as in the paper) and the rest for
    testing. ``classes="all"`` takes every category except ``BACKGROUND_Google``; ``train_per_class=None``
    splits by ``test_fraction`` instead. Caltech cannot be downloaded automatically (the archive needs a
    browser); ``download`` is ignored."""
    wanted = None if classes == "all" else check_split_options(classes, test_fraction, train_per_class, split_seed)
    root = find_caltech(data_dir, wanted)
    if wanted is None:
        wanted = [c for c in class_folders(root) if c != CALTECH_BACKGROUND]
    train, test, names = read_image_folder(root, "caltech", size, grayscale, wanted, test_fraction,
                                           train_per_class, split_seed)
    return _finish(train, test, names, name="caltech", val_fraction=val_fraction, seed=seed,
                   in_memory=in_memory, memory_limit_gb=memory_limit_gb, stats_samples=stats_samples,
                   empty_test_ok=test_fraction == 0)
