"""MNIST and Fashion-MNIST from their IDX files (``*-ubyte`` or ``*-ubyte.gz``).

Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (each raw or ``.gz``). Searched in ``data_dir`` and under every root (see
:mod:`deepspike.data.paths`) in ``mnist/``, ``MNIST/raw/`` (resp. ``fashion-mnist/``, ``fashion_mnist/``,
``FashionMNIST/raw/``), and for Fashion-MNIST also Debian's ``/usr/share/datasets/fashion-mnist``
(package ``dataset-fashion-mnist``). Images come back as ``[N, 1, 28, 28]`` with ``x = v / 255``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepspike.core.errors import DataCorruptError
from deepspike.data import paths
from deepspike.data.download import Resource, fetch
from deepspike.data.idx import read_idx
from deepspike.data.registry import fixed_shape, register_dataset
from deepspike.data.splits import DataSplits, make_splits
from deepspike.data.tensor_dataset import TensorDataset

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MNIST_MD5 = ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
             "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")
FASHION_MD5 = ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
               "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")
MNIST_RESOURCES = tuple(Resource(f + ".gz", MNIST_URL + f + ".gz", "md5:" + m)
                        for f, m in zip(FILES, MNIST_MD5))
FASHION_RESOURCES = tuple(Resource(f + ".gz", FASHION_URL + f + ".gz", "md5:" + m)
                          for f, m in zip(FILES, FASHION_MD5))
IMAGE_SIZE = (28, 28)
"""Rows x columns of every MNIST-family image (an IDX of other images, e.g. 8x8, is another data set)."""
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


def _pair(images_path: Path, labels_path: Path, name: str) -> TensorDataset:
    images = read_idx(images_path, ndim=3)  # [N, 28, 28] uint8
    labels = read_idx(labels_path, ndim=1)  # [N] uint8
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataCorruptError(f"{name}: {images_path} / {labels_path} must hold uint8 values")
    if images.shape[1:] != IMAGE_SIZE:  # 8x8 images loaded as "mnist" and trained a model of another input shape
        raise DataCorruptError(f"{name}: {images_path} holds {images.shape[1]}x{images.shape[2]} images; {name} "
                               f"images are {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} (are these another data set's IDX files?)")
    if len(images) != len(labels):
        raise DataCorruptError(f"{name}: {images_path} has {len(images)} images but {labels_path} has "
                               f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataCorruptError(f"{name}: {labels_path} has label {labels.max()}; valid: 0..9")
    x = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)  # [N, 1, 28, 28]
    return TensorDataset(x, torch.from_numpy(labels.astype(np.int64)), name)


def load_idx_dataset(name: str, data_dir, val_fraction: float, seed: int, download: bool, subdirs,
                     extra, resources, download_subdir: str, how_to_get: str, class_names) -> DataSplits:
    """Find the four IDX files (downloading them on request), read them, and split."""
    required = [(f, f + ".gz") for f in FILES]
    places = paths.candidate_dirs(data_dir, subdirs, extra)
    try:
        found = paths.find_files(name, required, places, how_to_get)
    except FileNotFoundError:
        if not download:
            raise
        target = paths.download_dir(data_dir, download_subdir)
        for resource in resources:
            fetch(resource, target)
        found = paths.find_files(name, required, [target], how_to_get)
    train = _pair(found[0], found[1], name)
    test = _pair(found[2], found[3], name)
    return make_splits(train, test, val_fraction=val_fraction, seed=seed, num_classes=10,
                       class_names=class_names, name=name)


@register_dataset("mnist", shape=fixed_shape((1, 28, 28), 10))
def load_mnist(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False) -> DataSplits:
    """MNIST: 60,000 train / 10,000 test handwritten digits, ``x [N, 1, 28, 28]`` in [0, 1]."""
    return load_idx_dataset(
        "mnist", data_dir, val_fraction, seed, download, subdirs=("mnist", "MNIST/raw"), extra=(),
        resources=MNIST_RESOURCES, download_subdir="mnist",
        how_to_get="pass download=True (recipe: data.download=true) or copy the IDX files into one of these",
        class_names=[str(d) for d in range(10)])


@register_dataset("fashion_mnist", shape=fixed_shape((1, 28, 28), 10))
def load_fashion_mnist(data_dir=None, val_fraction: float = 0.0, seed: int = 0,
                       download: bool = False) -> DataSplits:
    """Fashion-MNIST: 60,000 train / 10,000 test clothing images, ``x [N, 1, 28, 28]`` in [0, 1]."""
    return load_idx_dataset(
        "fashion_mnist", data_dir, val_fraction, seed, download,
        subdirs=("fashion-mnist", "fashion_mnist", "FashionMNIST/raw"), extra=(DEBIAN_FASHION_DIR,),
        resources=FASHION_RESOURCES, download_subdir="fashion-mnist",
        how_to_get="sudo apt-get install dataset-fashion-mnist, or pass download=True (recipe: "
                   "data.download=true)",
        class_names=FASHION_CLASSES)
