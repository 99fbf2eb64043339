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


def random_events(rng: np.random.Generator, n: int, size: int, t_max_us: int) -> np.ndarray:
    """``n`` events at random pixels of a ``size x size`` sensor, sorted times in ``[0, t_max_us)``."""
    from deepspike.data.neuromorphic.formats import make_events

    t = np.sort(rng.integers(0, t_max_us, n))
    return make_events(rng.integers(0, size, n), rng.integers(0, size, n), t, rng.integers(0, 2, n))


def write_nmnist(root: Path, n: int, rng: np.random.Generator, events: int = 40) -> None:
    """``NMNIST/{Train,Test}/<digit>/<id>.bin``: ``n`` recordings per split (digits cycle), 100 ms each."""
    from deepspike.data.neuromorphic.formats import write_nmnist_bin

    for split in ("Train", "Test"):
        for digit in range(10):
            (root / "NMNIST" / split / str(digit)).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_nmnist_bin(root / "NMNIST" / split / str(i % 10) / f"{i:05d}.bin",
                             random_events(rng, events, 34, 100_000))


def write_cifar10_dvs(root: Path, n: int, rng: np.random.Generator, events: int = 40) -> None:
    """``CIFAR10DVS/<class>/*.aedat`` (AEDAT 2.0): ``n`` recordings of 60 ms per class (the loader splits 9:1)."""
    from deepspike.data.neuromorphic.cifar10dvs import CLASSES
    from deepspike.data.neuromorphic.formats import write_aedat2

    for c in CLASSES:
        (root / "CIFAR10DVS" / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            write_aedat2(root / "CIFAR10DVS" / c / f"cifar10_{c}_{i}.aedat", random_events(rng, events, 128, 60_000))


def write_dvs_gesture(root: Path, n: int, rng: np.random.Generator, events: int = 40) -> None:
    """``DVSGesture/ibmGesture{Train,Test}/userNN_fluorescent/<label>.npy``: 11 gestures per user folder."""
    from deepspike.data.neuromorphic.formats import write_gesture_npy

    for split in ("ibmGestureTrain", "ibmGestureTest"):
        for user in range(max(1, n // 11)):
            folder = root / "DVSGesture" / split / f"user{user + 1:02d}_fluorescent"
            folder.mkdir(parents=True, exist_ok=True)
            for label in range(11):
                write_gesture_npy(folder / f"{label}.npy", random_events(rng, events, 128, 400_000))


def write_dataset(name: str, root: Path, n: int = 4, seed: int = 0) -> Path:
    """Write data set ``name`` (a registry name) with about ``n`` samples per split and class group.

    Event sets are tiny (40 events per recording); ``cifar10_dvs`` gets ``max(6, n)`` recordings per
    class, so its fixed 9:1 split leaves one test recording per class.
    """
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
    elif name == "nmnist":
        write_nmnist(root, n, rng)
    elif name == "cifar10_dvs":
        write_cifar10_dvs(root, max(6, n), rng)  # 6 per class: round(0.1 * 6) = 1 test each
    elif name == "dvs_gesture":
        write_dvs_gesture(root, n, rng)
    elif name == "shd":  # n recordings per class of the 20, 40 spikes each in the first 0.5 s
        (root / "SHD").mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            samples = [(np.sort(rng.uniform(0, 0.5, 40)), rng.integers(0, 700, 40)) for _ in range(20 * n)]
            write_shd_h5(root / "SHD" / f"shd_{split}.h5", samples, [c for c in range(20) for _ in range(n)])
    elif name in ("mnist_events", "fashion_mnist_events", "mnist_rows", "fashion_mnist_rows"):  # from their static set
        write_dataset(name.rsplit("_", 1)[0], root, n, seed)
    elif name not in ("digits", "digits_events", "digits_rows"):
        raise ValueError(f"no fake-data writer for data set {name!r}")
    return root


def write_shd_h5(path: Path, samples, labels, keys=None) -> Path:
    """An SHD/SSC HDF5 file in the release's layout: ``spikes/times`` (variable-length float32, seconds),
    ``spikes/units`` (variable-length uint16 channels), ``labels`` (uint16), ``extra/speaker`` (uint16 zeros) and
    ``extra/keys`` (``keys``, default ``class0``..``class{max label}``, as bytes). ``samples`` holds one
    ``(times, units)`` pair per recording; nothing is checked, so malformed files can be written too."""
    import h5py

    n = len(samples)
    keys = keys if keys is not None else [f"class{c}" for c in range(int(max(labels, default=0)) + 1)]
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, dtype=np.float32)
            units[i] = np.asarray(u, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        f.create_dataset("extra/speaker", data=np.zeros(len(labels), dtype=np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
    return Path(path)
