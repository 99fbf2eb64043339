"""Tiny data sets written in the real on-disk formats, for tests that run recipes end to end.

``write_dataset(name, root, n)`` writes ``n`` samples per split of data set ``name`` under ``root`` in the
layout the loader searches (``data.data_dir=root``) and returns ``root``. Pixels are random; labels cycle
through the classes so every class appears.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX file: magic ``0x0000 08 ndim`` (uint8 data), big-endian int32 sizes, then the bytes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist_like(root: Path, subdir: str, n: int, rng: np.random.Generator) -> None:
    for split in ("train", "t10k"):
        write_idx(root / subdir / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / subdir / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def write_cifar10(root: Path, n: int, rng: np.random.Generator) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)


def write_svhn(root: Path, n: int, rng: np.random.Generator) -> None:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1)  # SVHN labels 1..10, 10 meaning digit 0
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})


def write_image_tree(
    folder: Path, classes: list[str], n: int, size: tuple[int, int], rng: np.random.Generator, suffix: str = ".png"
) -> None:
    from PIL import Image

    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / c / f"{i:04d}{suffix}")


def write_dataset(name: str, root: Path, n: int = 4, seed: int = 0) -> Path:
    """Write data set ``name`` (a registry name) with about ``n`` samples per split and class group."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    if name == "mnist":
        write_mnist_like(root, "mnist", n, rng)
    elif name == "fashion_mnist":
        write_mnist_like(root, "fashion-mnist", n, rng)
    elif name == "cifar10":
        write_cifar10(root, n, rng)
    elif name == "svhn":
        write_svhn(root, n, rng)
    elif name == "imagefolder":
        for split in ("train", "val"):
            write_image_tree(root / split, ["n01", "n02"], n, (40, 48), rng, ".JPEG")
    elif name == "caltech":
        write_image_tree(root / "101_ObjectCategories", ["Faces_easy", "Motorbikes"], n, (50, 60), rng, ".jpg")
    elif name != "digits":
        raise ValueError(f"no fake-data writer for data set {name!r}")
    return root
