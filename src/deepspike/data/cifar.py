"""CIFAR-10 from the "python version" pickle batches.

Folder ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``: each a pickled
dict (written by Python 2, so keys are bytes) with ``b"data"`` uint8 ``[10000, 3072]`` (a row holds the
1024 red, then green, then blue values of a 32x32 image, row-major) and ``b"labels"`` (list of 0..9).
``batches.meta`` (optional) holds ``b"label_names"``. Searched in ``data_dir`` itself and, under
``data_dir`` and each root, in ``cifar-10-batches-py/``, ``cifar10/cifar-10-batches-py/`` and
``CIFAR10/cifar-10-batches-py/``.

Only numpy arrays, lists, dicts and plain values are unpickled: any other object in a pickle raises
:class:`DataCorruptError` instead of running code.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from deepspike.core.atomic import TEMP_SUFFIX
from deepspike.core.errors import DataCorruptError, DataNotFoundError
from deepspike.data import paths
from deepspike.data.download import Resource, extract_tar, fetch
from deepspike.data.registry import fixed_shape, register_dataset
from deepspike.data.splits import DataSplits, make_splits, whole_labels
from deepspike.data.tensor_dataset import TensorDataset

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RESOURCE = Resource("cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    "md5:c58f30108f718f92721af3b95e74349a")

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_pickle(path: Path) -> dict:
    """Unpickle a CIFAR batch (bytes keys) allowing only numpy arrays and builtins."""
    try:
        obj = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means the file is not a CIFAR batch
        raise DataCorruptError(f"cifar10: cannot unpickle {path}: {paths.one_line(e)}") from e
    if not isinstance(obj, dict):
        raise DataCorruptError(f"cifar10: {path} holds a {type(obj).__name__}, expected a dict")
    return obj


def check_unshared(data, labels, path: Path) -> None:
    """A one-line :class:`DataCorruptError` unless ``data`` is a numpy array and ``labels`` a flat list (or an array)
    of numbers, as every CIFAR-10 batch holds them. A pickle may list one object many times for a few bytes each (its
    memo): ``[row] * 10**6`` is a 6 MB file that numpy would expand to 24 GB of int64, a 21 KB nest of lists of
    labels asked numpy for 206 GiB (a MemoryError traceback), and one long text label listed 10**5 times was parsed
    10**5 times. Arrays are stored whole, so they stay as large as the file."""
    if not isinstance(data, np.ndarray):
        raise DataCorruptError(f"cifar10: {path} holds data as a {type(data).__name__}; expected a uint8 array "
                               "[N, 3072]")
    if isinstance(labels, list | tuple) and any(isinstance(v, list | tuple | dict | np.ndarray) for v in labels):
        raise DataCorruptError(f"cifar10: {path}: labels must be a flat list of class indices, not a nested one")
    odd = next((v for v in labels if not isinstance(v, int | float | np.number)), None) if isinstance(
        labels, list | tuple) else None
    if odd is not None:  # a text listed 10**5 times was parsed by numpy 10**5 times (minutes for a small file)
        raise DataCorruptError(f"cifar10: {path}: labels are not numbers (a {type(odd).__name__} among them; a flat "
                               "list of class indices is expected)")


def read_batch(path: Path, label_key: bytes = b"labels") -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[N, 3, 32, 32]`` and labels int64 ``[N]`` of one pickle batch."""
    batch = load_pickle(path)
    if b"data" not in batch or label_key not in batch:
        raise DataCorruptError(f"cifar10: {path} lacks keys b'data'/{label_key!r}; has {sorted(batch, key=repr)}")
    check_unshared(batch[b"data"], batch[label_key], path)
    data = batch[b"data"]
    labels = whole_labels(batch[label_key], 0, 9, f"cifar10: {path}")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataCorruptError(f"cifar10: {path} has data {data.dtype}{list(data.shape)} and {len(labels)} "
                               "labels; expected uint8 [N, 3072] and N labels")
    return data.reshape(-1, 3, 32, 32), labels  # [N, 3072] -> [N, 3, 32, 32] (channel-major rows)


def _read_split(files: list[Path]) -> TensorDataset:
    parts = [read_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])  # each batch's checked by read_batch
    x = torch.from_numpy(images).float().div_(255.0)
    return TensorDataset(x, torch.from_numpy(labels), "cifar10")


def _class_names(folder: Path) -> tuple[str, ...]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return CLASSES
    names = load_pickle(meta).get(b"label_names")
    if names is None:
        return CLASSES
    if not (isinstance(names, list) and len(names) == len(CLASSES) and all(isinstance(n, bytes | str) for n in names)):
        raise DataCorruptError(f"cifar10: {meta} gives label_names {type(names).__name__}; expected a list of "
                               f"{len(CLASSES)} names")
    return tuple(n.decode(errors="replace") if isinstance(n, bytes) else n for n in names)


def unpack_whole(archive: Path, root: Path, complete: Callable[[], object]) -> None:
    """Unpack ``archive`` (its member ``FOLDER/...``) into ``root`` so that ``root / FOLDER`` appears whole: into a
    temporary folder beside it, renamed into place. Every torchrun process loads the data, and one that unpacked in
    place rewrote the files another was reading (measured: "cannot unpickle .../data_batch_3: pickle data was
    truncated", a DataCorruptError on sound data). Where ``root / FOLDER`` is there already (another process's,
    or the rest of an earlier unpacking that ``complete`` (raises unless the folder is whole) refuses), it stays,
    and the archive is unpacked over it in place only in the second case, as before."""
    with tempfile.TemporaryDirectory(prefix=f".{FOLDER}.", suffix=TEMP_SUFFIX, dir=root) as tmp:
        extract_tar(archive, tmp)
        try:
            os.rename(Path(tmp) / FOLDER, root / FOLDER)  # atomic; refused where the folder is (not empty)
            return
        except OSError:
            pass
    try:
        complete()
    except DataNotFoundError:
        extract_tar(archive, root)


@register_dataset("cifar10", shape=fixed_shape((3, 32, 32), len(CLASSES)))
def load_cifar10(data_dir=None, val_fraction: float = 0.0, seed: int = 0,
                 download: bool = False) -> DataSplits:
    """CIFAR-10: 50,000 train / 10,000 test colour images, ``x [N, 3, 32, 32]`` in [0, 1]."""
    required = [(f,) for f in (*TRAIN_FILES, TEST_FILE)]
    places = paths.candidate_dirs(data_dir, (FOLDER, f"cifar10/{FOLDER}", f"CIFAR10/{FOLDER}"))
    how = "pass download=True (recipe: data.download=true), or unpack cifar-10-python.tar.gz in one of these"
    try:
        found = paths.find_files("cifar10", required, places, how)
    except FileNotFoundError:
        if not download:
            raise
        root = paths.download_dir(data_dir)
        look = partial(paths.find_files, "cifar10", required, [root / FOLDER], how)
        unpack_whole(fetch(RESOURCE, root), root, look)
        found = look()
    train = _read_split(found[:5])
    test = _read_split(found[5:])
    return make_splits(train, test, val_fraction=val_fraction, seed=seed, num_classes=10,
                       class_names=_class_names(found[0].parent), name="cifar10")
