"""scikit-learn's bundled 8x8 digits: the default, always-available data set.

1,797 greyscale images with 17 grey levels (0..16), scaled to [0, 1] by ``x = v / 16``. The train/test
split is FIXED (not affected by ``seed``): ``sklearn.model_selection.train_test_split`` with
``test_size=360, stratify=labels, random_state=0`` gives 1,437 training and 360 test images (36 per
class), each kept in the original file order. ``seed`` only chooses the validation part.
"""

from __future__ import annotations

import numpy as np
import torch

from deepspike.data.registry import fixed_shape, register_dataset
from deepspike.data.splits import DataSplits, make_splits
from deepspike.data.tensor_dataset import TensorDataset

TEST_SIZE = 360
SPLIT_SEED = 0


def digits_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed stratified (train, test) index arrays, each sorted ascending (1437 and 360 entries)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(labels)), test_size=TEST_SIZE, stratify=labels,
                                   random_state=SPLIT_SEED)
    return np.sort(train), np.sort(test)


@register_dataset("digits", shape=fixed_shape((1, 8, 8), 10))
def load_digits(data_dir=None, val_fraction: float = 0.0, seed: int = 0,
                download: bool = False) -> DataSplits:
    """Digits as ``x [N, 1, 8, 8]`` in [0, 1] (``v / 16``), ``y [N]`` in 0..9; ``data_dir``/``download``
    are ignored (the data ships with scikit-learn)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).div_(16.0).unsqueeze(1)  # [1797, 1, 8, 8]
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    train_idx, test_idx = (torch.as_tensor(i) for i in digits_split(bunch.target))
    train = TensorDataset(images[train_idx], labels[train_idx], "digits")
    test = TensorDataset(images[test_idx], labels[test_idx], "digits")
    return make_splits(train, test, val_fraction=val_fraction, seed=seed, num_classes=10,
                       class_names=[str(d) for d in range(10)], name="digits")
