"""Static image data: loaders, the seeded splits, in-memory batches, augmentation, downloads.

``load_dataset(name, data_dir=None, val_fraction=0.0, seed=0, download=False, **options) -> DataSplits``
with names from ``list_datasets()`` (digits, mnist, fashion_mnist, cifar10, svhn, imagefolder, caltech);
``BatchIterator`` turns a split into ``(x [B, C, H, W], y [B])`` batches. See each loader module for the
on-disk format and where files are looked for (:mod:`deepspike.data.paths`).
"""

from deepspike.data import (  # noqa: F401  (register the loaders)
    cifar,
    digits,
    folders,
    mnist,
    neuromorphic,  # noqa: F401  (event data sets: nmnist, cifar10_dvs, ..._events)
    svhn,
)
from deepspike.data.augment import Augment, as_augment, normalize, random_crop, random_hflip, shift_crop
from deepspike.data.batches import BatchIterator
from deepspike.data.download import Resource, download_file, extract_tar, fetch, file_digest, verify_checksum
from deepspike.data.idx import parse_idx, read_idx
from deepspike.data.image_folder import ImageFileDataset
from deepspike.data.mixing import MixedLabels, mixed_loss
from deepspike.data.registry import dataset_options, list_datasets, load_dataset, register_dataset
from deepspike.data.splits import DataSplits, channel_stats, make_splits, mix_seed, split_indices
from deepspike.data.tensor_dataset import TensorDataset

__all__ = [
    "Augment",
    "BatchIterator",
    "DataSplits",
    "ImageFileDataset",
    "MixedLabels",
    "Resource",
    "TensorDataset",
    "as_augment",
    "channel_stats",
    "download_file",
    "mixed_loss",
    "extract_tar",
    "fetch",
    "file_digest",
    "dataset_options",
    "list_datasets",
    "load_dataset",
    "make_splits",
    "mix_seed",
    "normalize",
    "parse_idx",
    "random_crop",
    "random_hflip",
    "read_idx",
    "register_dataset",
    "shift_crop",
    "split_indices",
    "verify_checksum",
]
