"""Image folders: ``<root>/<class>/<image>`` files decoded and resized with Pillow.

Two layouts: with a split (ImageNet style, ``<root>/train/<class>/*`` and ``<root>/val/<class>/*`` or
``<root>/test/<class>/*``) or without (``<root>/<class>/*``, e.g. Caltech 101), which is split per class
with a fixed ``split_seed``: either ``train_per_class`` images per class for training and the rest for
testing, or a stratified ``test_fraction``. Classes are the sorted folder names (or the ``classes`` subset,
in the order given); folders without images are not classes.

Images become ``[C, H, W]`` in [0, 1] (``C = 1`` with ``grayscale``, else 3) after a bilinear resize to
``size``. Folders whose decoded size fits in ``memory_limit_gb`` are loaded into memory
(:class:`TensorDataset`); larger ones stream from disk (:class:`ImageFileDataset`, read by a DataLoader).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.core.options import is_finite, is_whole
from deepspike.data.augment import MAX_SIZE
from deepspike.data.paths import check_no_broken_links, check_regular_file, one_line
from deepspike.data.splits import channel_stats, check_split_seed, mix_seed, split_indices, warn_missing_classes
from deepspike.data.tensor_dataset import TensorDataset

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")


def as_size(size) -> tuple[int, int]:
    """``(H, W)`` from an integer (square) or a pair of integers, each from 1 to ``MAX_SIZE``."""
    hw = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, list | tuple) else ()
    if len(hw) != 2 or not all(is_whole(v, 1, MAX_SIZE) for v in hw):
        raise ConfigError(f"image size must be an integer from 1 to {MAX_SIZE} or [height, width] of two, "
                          f"got {size!r}")
    return hw  # type: ignore[return-value]


def check_split_options(classes, test_fraction, train_per_class, split_seed) -> list[str] | None:
    """The options of :func:`read_image_folder` that pick and split the images, checked: ``classes`` (None, one
    name or a list of names; returned as a list), ``test_fraction`` in [0, 1), ``train_per_class`` (None or an
    integer >= 1) and ``split_seed`` (an integer from 0 to 2**63 - 1); a one-line ``ConfigError`` otherwise (a
    string fraction or seed crashed, ``train_per_class=-1`` trained on all but one image of each class)."""
    names = [classes] if isinstance(classes, str) else classes
    if names is not None and not (isinstance(names, list | tuple) and names and all(isinstance(n, str) for n in names)):
        raise ConfigError(f"data.args.classes must be a class folder name or a list of them, got {classes!r}")
    if not (is_finite(test_fraction) and 0 <= test_fraction < 1):
        raise ConfigError(f"data.args.test_fraction must be a number in [0, 1), got {test_fraction!r}")
    if train_per_class is not None and not is_whole(train_per_class, 1):
        raise ConfigError(f"data.args.train_per_class must be an integer >= 1 or null, got {train_per_class!r}")
    check_split_seed(split_seed)
    return None if names is None else list(names)


def check_loading_options(grayscale, in_memory, memory_limit_gb, stats_samples) -> None:
    """A one-line ``ConfigError`` unless ``grayscale`` is true or false, ``in_memory`` true, false or null,
    ``memory_limit_gb`` a number >= 0 and ``stats_samples`` an integer >= 1 (the string "false" read as true, and
    ``stats_samples=0`` made the channel statistics NaN)."""
    for key, value, ok in (("grayscale", grayscale, isinstance(grayscale, bool)),
                           ("in_memory", in_memory, in_memory is None or isinstance(in_memory, bool)),
                           ("memory_limit_gb", memory_limit_gb, is_finite(memory_limit_gb) and memory_limit_gb >= 0),
                           ("stats_samples", stats_samples, is_whole(stats_samples, 1))):
        if not ok:
            rule = {"grayscale": "true or false", "in_memory": "true, false or null",
                    "memory_limit_gb": "a number >= 0", "stats_samples": "an integer >= 1"}[key]
            raise ConfigError(f"data.args.{key} must be {rule}, got {value!r}")


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by extension, case-insensitive), sorted by name; an entry named as an
    image that is no regular file (a folder, a broken link or a link loop, a pipe) is a one-line
    :class:`DataCorruptError` (``paths.check_regular_file``): such entries were left out with no word, the images
    they stood for missing from the data set."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    for p in files:
        check_regular_file(p)
    return files


def class_folders(root: Path) -> dict[str, list[Path]]:
    """``{class name: image files}`` for every sub-folder of ``root`` that holds images, sorted by name; a broken link
    among them (a class folder whose target is gone: it was skipped, the class silently dropped) is a one-line
    :class:`DataCorruptError`."""
    check_no_broken_links(root)
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = image_files(d)
        if files:
            out[d.name] = files
    return out


def select_classes(found: dict[str, list[Path]], classes: Sequence[str] | None, root: Path,
                   dataset: str) -> dict[str, list[Path]]:
    """Keep ``classes`` (in that order) or all; unknown class names raise :class:`DataNotFoundError`."""
    if not found:
        raise DataNotFoundError(f"{dataset}: no <class>/<image> folders with images in {root}")
    if classes is None:
        return found
    missing = [c for c in classes if c not in found]
    if missing:
        raise DataNotFoundError(f"{dataset}: no image folder for class(es) {', '.join(missing)} in {root}; "
                                f"found: {', '.join(found)}")
    return {c: found[c] for c in classes}


WIDE_MODES = {"I": "32-bit integer", "F": "32-bit float"}
"""Pillow's grey modes of no fixed range (int32 and int16 TIFFs open as ``I``, float ones as ``F``): its ``convert``
clips them to [0, 255] and rounds, so ``load_image`` reads them only when they hold 8-bit grey levels."""


def _grey_levels(values: np.ndarray, mode: str) -> np.ndarray:
    """``values [H, W]`` of a ``WIDE_MODES`` image as uint8 when every one is a whole number in [0, 255], else a
    ``ValueError`` (``load_image``'s one-line ``DataCorruptError`` naming the file): 16-bit levels in an int32 file
    came out white above 255, a float image in [0, 1] black (0.25 -> 0), with no word."""
    finite = np.isfinite(values)
    if finite.all() and values.min() >= 0 and values.max() <= 255 and (np.rint(values) == values).all():
        return values.astype(np.uint8)
    shown = f"[{values[finite].min():g}, {values[finite].max():g}]" if finite.any() else "none finite"
    raise ValueError(f"Pillow mode {mode} ({WIDE_MODES[mode]} grey) holds values in {shown}, not 8-bit grey levels "
                     "(whole numbers in [0, 255]) that it could be read as: convert it to 8 bits (or 16-bit unsigned "
                     "grey)")


def load_image(path: Path, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """Decode one image to uint8 ``[H, W, C]`` (``C = 1`` or 3), bilinearly resized to ``size = (H, W)``; 16-bit grey
    images (Pillow's ``I;16`` modes: 16-bit PNG, TIFF) are scaled to 8 bits first, ``round(v / 257)``; 32-bit integer
    or float grey (``WIDE_MODES``) is read only when it holds 8-bit levels (``_grey_levels``)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode.startswith("I;16"):  # Pillow's convert clips 16-bit grey at 255: all but black turned white
                img = Image.fromarray(np.rint(np.asarray(img, dtype=np.float64) / 257.0).astype(np.uint8), "L")
            elif img.mode in WIDE_MODES:
                img = Image.fromarray(_grey_levels(np.asarray(img), img.mode), "L")
            img = img.convert("L" if grayscale else "RGB")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.array(img, dtype=np.uint8)  # a writable copy
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:  # PIL's errors for unreadable or
        # truncated files, and for a header claiming more pixels than PIL's limit (a decompression bomb)
        raise DataCorruptError(f"cannot decode image {path}: {one_line(e)}; remove or replace it") from e
    return arr[:, :, None] if grayscale else arr  # [H, W] -> [H, W, 1]


class ImageFileDataset(torch.utils.data.Dataset):
    """Images streamed from files: ``ds[i] -> (x [C, H, W] float32 in [0, 1], label int)``.

    ``files`` (paths), ``y`` int64 ``[N]``; decoding happens on access (in DataLoader workers).
    """

    in_memory = False

    def __init__(self, files: Sequence[Path], labels: torch.Tensor, size: tuple[int, int], grayscale: bool):
        self.files = list(files)
        self.y = torch.as_tensor(labels, dtype=torch.int64)
        self.size, self.grayscale = size, grayscale

    def __len__(self) -> int:
        """Number of image files N."""
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        arr = load_image(self.files[i], self.size, self.grayscale)  # [H, W, C] uint8
        return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0), int(self.y[i])  # [C, H, W]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one decoded sample."""
        return (1 if self.grayscale else 3, *self.size)

    def subset(self, idx: torch.Tensor) -> ImageFileDataset:
        """A new streaming data set of the files at positions ``idx`` (int64 ``[M]``)."""
        return ImageFileDataset([self.files[i] for i in idx.tolist()], self.y[idx], self.size, self.grayscale)

    def load(self, workers: int | None = None) -> TensorDataset:
        """Decode every image (threads; Pillow releases the GIL) into a :class:`TensorDataset`."""
        c, h, w = self.shape
        out = np.empty((len(self), h, w, c), dtype=np.uint8)  # [N, H, W, C]
        workers = workers or min(8, os.cpu_count() or 1)

        def work(i: int) -> None:
            out[i] = load_image(self.files[i], self.size, self.grayscale)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(len(self))))
        x = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)  # [N, H, W, C] -> [N, C, H, W]
        return TensorDataset(x.contiguous(), self.y)


def sampled_stats(ds: ImageFileDataset, samples: int, seed: int = 0):
    """Per-channel mean/std of at most ``samples`` images drawn (seeded) from a streaming data set."""
    g = torch.Generator().manual_seed(mix_seed(seed, 0x57A7))
    idx = torch.randperm(len(ds), generator=g)[:samples].sort().values
    return channel_stats(ds.subset(idx).load().x)


def per_class_split(labels: torch.Tensor, train_per_class: int | None, test_fraction: float,
                    split_seed: int, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, test)`` for a folder without a split: ``train_per_class`` random images of each
    class for training (the rest for testing), or a stratified ``test_fraction`` for testing."""
    if train_per_class is None:
        return split_indices(labels, test_fraction, split_seed)
    g = torch.Generator().manual_seed(mix_seed(split_seed, 0xCA17))
    train = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        if len(members) <= train_per_class:
            raise ConfigError(f"{dataset}: class {c} has {len(members)} images, need more than "
                              f"train_per_class={train_per_class}")
        train.append(members[torch.randperm(len(members), generator=g)[:train_per_class]])
    train_idx = torch.cat(train).sort().values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[train_idx] = False
    return train_idx, torch.nonzero(mask).flatten()


def _dataset(folders: dict[str, list[Path]], names: Sequence[str], size, grayscale) -> ImageFileDataset:
    index = {n: i for i, n in enumerate(names)}
    files = [f for n, fs in folders.items() for f in fs]
    labels = torch.tensor([index[n] for n, fs in folders.items() for _ in fs], dtype=torch.int64)
    return ImageFileDataset(files, labels, size, grayscale)


def read_image_folder(root: Path, dataset: str, size, grayscale: bool, classes, test_fraction: float,
                      train_per_class: int | None, split_seed: int):
    """``(train, test, class_names)`` as streaming data sets for either layout of ``root``."""
    size = as_size(size)
    classes = check_split_options(classes, test_fraction, train_per_class, split_seed)
    split_dirs = [root / "train", next((root / s for s in ("val", "test") if (root / s).is_dir()), None)]
    if split_dirs[0].is_dir() and split_dirs[1] is not None:
        train_folders = select_classes(class_folders(split_dirs[0]), classes, split_dirs[0], dataset)
        names = list(train_folders)
        test_folders = {c: fs for c, fs in class_folders(split_dirs[1]).items() if c in train_folders}
        unknown = set(class_folders(split_dirs[1])) - set(class_folders(split_dirs[0]))
        if unknown:
            raise DataCorruptError(f"{dataset}: {split_dirs[1]} has class folders not in "
                                   f"{split_dirs[0]}: {', '.join(sorted(unknown))}")
        warn_missing_classes([names.index(c) for c in test_folders], names, f"{dataset}: {split_dirs[1]}")
        train = _dataset(train_folders, names, size, grayscale)
        return train, _dataset(test_folders, names, size, grayscale), names
    folders = select_classes(class_folders(root), classes, root, dataset)
    names = list(folders)
    everything = _dataset(folders, names, size, grayscale)
    train_idx, test_idx = per_class_split(everything.y, train_per_class, test_fraction, split_seed, dataset)
    if train_per_class is not None or test_fraction > 0:  # none of a class of at most 1 / (2 test_fraction) images
        warn_missing_classes(everything.y[test_idx].tolist(), names, f"{dataset}: the test split")
    return everything.subset(train_idx), everything.subset(test_idx), names


def decoded_bytes(ds: ImageFileDataset) -> int:
    """Memory the decoded float32 images would take: ``N * C * H * W * 4`` bytes."""
    c, h, w = ds.shape
    return len(ds) * c * h * w * 4
