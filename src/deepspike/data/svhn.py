"""SVHN (cropped digits) from ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB v5 files, scipy.io).

Each file holds ``X`` uint8 ``[32, 32, 3, N]`` (height, width, channel, sample) and ``y`` ``[N, 1]`` with
labels 1..10, where 10 stands for the digit 0 (mapped to 0 here). Searched in ``data_dir`` and under each
root in ``svhn/`` and ``SVHN/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepspike.core.errors import DataCorruptError
from deepspike.data import paths
from deepspike.data.download import Resource, fetch
from deepspike.data.matfile import mat5_problem
from deepspike.data.registry import fixed_shape, register_dataset
from deepspike.data.splits import DataSplits, make_splits, whole_labels
from deepspike.data.tensor_dataset import TensorDataset

URL = "http://ufldl.stanford.edu/housenumbers/"
RESOURCES = (Resource("train_32x32.mat", URL + "train_32x32.mat", "md5:e26dedcc434d2e4c54c9b2d4a06d8373"),
             Resource("test_32x32.mat", URL + "test_32x32.mat", "md5:eb5a983be6a315427106f1b164d9cef3"))


def read_mat(path: Path) -> TensorDataset:
    """One SVHN ``.mat`` file as ``x [N, 3, 32, 32]`` in [0, 1] and ``y [N]`` in 0..9 (10 -> 0)."""
    from scipy.io import loadmat

    try:
        problem = mat5_problem(path, ("X", "y"))  # headers that crash scipy's reader (a segmentation fault)
        mat = {} if problem else loadmat(path, variable_names=("X", "y"))  # no other variable of the file is read
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... for a bad file
        raise DataCorruptError(f"svhn: cannot read {path} as a MATLAB file: {paths.one_line(e)}") from e
    if problem:
        raise DataCorruptError(f"svhn: {path}: {problem}; the file is damaged")
    if "X" not in mat or "y" not in mat:
        raise DataCorruptError(f"svhn: {path} lacks variables 'X' and 'y'")
    images, labels = np.asarray(mat["X"]), whole_labels(mat["y"], 1, 10, f"svhn: {path}")
    shape_ok = images.ndim == 4 and images.shape[:3] == (32, 32, 3) and images.shape[3] == len(labels)
    if images.dtype != np.uint8 or not shape_ok:
        raise DataCorruptError(f"svhn: {path} has X {images.dtype}{list(images.shape)} and {len(labels)} "
                               "labels; expected uint8 [32, 32, 3, N] and N labels")  # 8x8 images loaded as svhn
    labels[labels == 10] = 0
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1)))  # [H, W, C, N] -> [N, C, H, W]
    return TensorDataset(x.float().div_(255.0), torch.from_numpy(labels), "svhn")


@register_dataset("svhn", shape=fixed_shape((3, 32, 32), 10))
def load_svhn(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False) -> DataSplits:
    """SVHN: 73,257 train / 26,032 test house-number digits, ``x [N, 3, 32, 32]`` in [0, 1]."""
    required = [(r.filename,) for r in RESOURCES]
    places = paths.candidate_dirs(data_dir, ("svhn", "SVHN"))
    how = "pass download=True (recipe: data.download=true) or copy train_32x32.mat/test_32x32.mat there"
    try:
        found = paths.find_files("svhn", required, places, how)
    except FileNotFoundError:
        if not download:
            raise
        target = paths.download_dir(data_dir, "svhn")
        for resource in RESOURCES:
            fetch(resource, target)
        found = paths.find_files("svhn", required, [target], how)
    return make_splits(read_mat(found[0]), read_mat(found[1]), val_fraction=val_fraction, seed=seed,
                       num_classes=10, class_names=[str(d) for d in range(10)], name="svhn")
