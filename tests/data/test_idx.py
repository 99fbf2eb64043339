"""IDX reader and the MNIST / Fashion-MNIST loaders on tiny files written in the real format."""

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from deepspike.core.errors import DataCorruptError, DataNotFoundError
from deepspike.data import load_dataset, mnist, parse_idx, read_idx


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real data leaks in: fake HOME, no $DEEPSPIKE_DATA, no Debian folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_DIR", tmp_path / "debian-fashion")


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding written here independently: 0, 0, 0x08 (uint8), ndim, big-endian sizes, data."""
    assert arr.dtype == np.uint8
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(idx_bytes(arr))
    else:
        path.write_bytes(idx_bytes(arr))


def tiny_mnist(folder: Path, gz: bool, marker: int = 0) -> None:
    """3 training and 2 test 28x28 images; image k has value 10*k + marker at pixel (k, 2k), rest 0."""
    for prefix, n, labels in (("train", 3, [7, 0, 9]), ("t10k", 2, [3, 5])):
        images = np.zeros((n, 28, 28), np.uint8)
        for k in range(n):
            images[k, k, 2 * k] = 10 * k + marker
        images[0, 27, 27] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.array(labels, np.uint8), gz)


def test_parse_idx_hand_written_bytes():
    # int16 (type 0x0B), 1 dim of size 3, big-endian values 1, -2, 300 = 0x0001, 0xFFFE, 0x012C
    data = bytes.fromhex("00000b01" "00000003" "0001fffe012c")
    arr = parse_idx(data)
    assert arr.tolist() == [1, -2, 300] and arr.dtype == np.int16
    # uint8 2x3 matrix, row-major
    data = bytes.fromhex("00000802" "00000002" "00000003" "010203040506")
    assert parse_idx(data).tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-ubyte", arr, gz)
    path = tmp_path / ("a-ubyte.gz" if gz else "a-ubyte")
    np.testing.assert_array_equal(read_idx(path, ndim=3), arr)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_data_dir_exact_pixels(tmp_path, gz):
    tiny_mnist(tmp_path / "d", gz)
    data = load_dataset("mnist", data_dir=tmp_path / "d")
    assert data.train.x.shape == (3, 1, 28, 28) and data.test.x.shape == (2, 1, 28, 28)
    assert data.train.y.tolist() == [7, 0, 9] and data.test.y.tolist() == [3, 5]
    assert data.train.y.dtype == torch.int64 and data.train.x.dtype == torch.float32
    assert data.train.x[1, 0, 1, 2].item() == pytest.approx(10 / 255)
    assert data.train.x[2, 0, 2, 4].item() == pytest.approx(20 / 255)
    assert data.train.x[0, 0, 27, 27].item() == 1.0  # 255 / 255
    assert data.train.x.sum().item() == pytest.approx((255 + 10 + 20) / 255)  # nothing else is lit
    assert data.test.x[1, 0, 1, 2].item() == pytest.approx(10 / 255)
    assert data.num_classes == 10 and data.input_shape == (1, 28, 28) and data.class_names[3] == "3"


def test_search_order_and_subfolders(tmp_path, monkeypatch):
    env_root, home = tmp_path / "env", tmp_path / "home"
    tiny_mnist(env_root / "MNIST" / "raw", gz=True, marker=1)
    tiny_mnist(home / ".cache" / "deepspike" / "mnist", gz=False, marker=2)
    monkeypatch.setenv("DEEPSPIKE_DATA", f"{tmp_path / 'nothing'}{os.pathsep}{env_root}")
    # $DEEPSPIKE_DATA (second entry) comes before the cache: pixel (1, 2) of image 1 is 10 + marker 1
    assert load_dataset("mnist").train.x[1, 0, 1, 2].item() == pytest.approx(11 / 255)
    monkeypatch.delenv("DEEPSPIKE_DATA")
    assert load_dataset("mnist").train.x[1, 0, 1, 2].item() == pytest.approx(12 / 255)
    # data_dir beats both, and its own "mnist/" subfolder is searched too
    tiny_mnist(tmp_path / "mine" / "mnist", gz=False, marker=3)
    mine = load_dataset("mnist", data_dir=tmp_path / "mine")
    assert mine.train.x[1, 0, 1, 2].item() == pytest.approx(13 / 255)


def test_fashion_from_debian_folder_and_class_names(tmp_path, monkeypatch):
    debian = tmp_path / "usr-share-fashion"
    tiny_mnist(debian, gz=True, marker=4)
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_DIR", debian)
    data = load_dataset("fashion_mnist")
    assert data.train.x[2, 0, 2, 4].item() == pytest.approx(24 / 255)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"


def test_fashion_does_not_take_mnist_files_from_shared_root(tmp_path, monkeypatch):
    """Under $DEEPSPIKE_DATA only named subfolders count: bare MNIST files there are not Fashion-MNIST."""
    tiny_mnist(tmp_path / "env", gz=True)
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError):
        load_dataset("fashion_mnist")
    tiny_mnist(tmp_path / "env" / "fashion-mnist", gz=True, marker=5)
    assert load_dataset("fashion_mnist").train.x[1, 0, 1, 2].item() == pytest.approx(15 / 255)


def test_missing_fashion_error_is_one_line_and_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("fashion_mnist", data_dir=tmp_path / "given")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("fashion_mnist")
    places = (tmp_path / "given", tmp_path / "given" / "FashionMNIST" / "raw",
              tmp_path / "env" / "fashion-mnist",
              tmp_path / "home" / ".cache" / "deepspike" / "fashion-mnist", tmp_path / "debian-fashion")
    for place in places:
        assert str(place) in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "download=True" in msg
    assert "train-images-idx3-ubyte" in msg


def test_corrupt_files(tmp_path):
    folder = tmp_path / "d"
    tiny_mnist(folder, gz=False)
    bad = folder / "train-images-idx3-ubyte"
    good = bad.read_bytes()
    bad.write_bytes(b"\x12\x34" + good[2:])  # wrong magic
    with pytest.raises(DataCorruptError, match="not an IDX file") as err:
        load_dataset("mnist", data_dir=folder)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    bad.write_bytes(good[:-5])  # truncated
    with pytest.raises(DataCorruptError, match="truncated"):
        load_dataset("mnist", data_dir=folder)
    bad.write_bytes(good)
    write_idx(folder / "train-labels-idx1-ubyte", np.array([1, 2], np.uint8), gz=False)  # 3 images, 2 labels
    with pytest.raises(DataCorruptError, match="3 images but"):
        load_dataset("mnist", data_dir=folder)
    write_idx(folder / "train-labels-idx1-ubyte", np.array([1, 2, 12], np.uint8), gz=False)
    with pytest.raises(DataCorruptError, match="label 12"):
        load_dataset("mnist", data_dir=folder)


def test_impossible_headers_are_corrupt_not_a_crash():
    """A shape whose byte count wraps int64 round to 0 passed the length check and crashed in reshape; so did more
    dimensions than numpy takes."""
    wraps = bytes([0, 0, 8, 3]) + struct.pack(">3I", 1 << 22, 1 << 21, 1 << 21)  # 2^64 bytes claimed, none there
    with pytest.raises(DataCorruptError, match="truncated or corrupt"):
        parse_idx(wraps)
    with pytest.raises(DataCorruptError, match="70 dimensions"):
        parse_idx(bytes([0, 0, 8, 70]) + struct.pack(">70I", *([1] * 70)) + b"\x00")


def test_truncated_gzip_is_corrupt(tmp_path):
    folder = tmp_path / "d"
    tiny_mnist(folder, gz=True)
    gz = folder / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:12])
    with pytest.raises(DataCorruptError, match=str(gz)):
        load_dataset("mnist", data_dir=folder)


REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not REAL.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_files(monkeypatch):
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_DIR", REAL)
    data = load_dataset("fashion_mnist", val_fraction=0.1)
    assert len(data.train) + len(data.val) == 60000 and len(data.test) == 10000
    assert torch.bincount(data.test.y).tolist() == [1000] * 10
    assert data.train.x.min() >= 0.0 and data.train.x.max() <= 1.0
    assert data.mean[0] == pytest.approx(0.286, abs=0.01)  # the well-known Fashion-MNIST mean


def test_a_gz_that_inflates_far_past_its_header_is_refused_without_inflating_it(tmp_path):
    """A 190 KB .gz whose header announces 4 bytes but that inflates to 200 MB: before, the whole 200 MB were
    decompressed into memory before the length check; now at most the announced bytes plus one are read."""
    import tracemalloc

    path = tmp_path / "bomb-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 4))
        for _ in range(200):
            f.write(bytes(1 << 20))
    assert os.path.getsize(path) < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(DataCorruptError, match=r"says shape \(4,\) \(4 bytes of data\) but the file holds more"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20


def test_a_gz_header_announcing_more_than_deflate_can_hold_is_refused_before_reading(tmp_path):
    """deflate packs at most about 1032:1, so a 40-byte .gz announcing 10**6 x 10**3 bytes is corrupt whatever
    follows; the same bytes raw, or a .gz that holds what it announces, still read."""
    header = bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 10**6, 10**3)
    path = tmp_path / "liar-idx2-ubyte.gz"
    path.write_bytes(gzip.compress(header))
    with pytest.raises(DataCorruptError, match=r"\(1000000000 bytes of data\), more than a gzip file of \d+ bytes"):
        read_idx(path)
    zeros = np.zeros((1000, 1000), np.uint8)  # 1 MB of zeros, about 1 KB compressed: inside deflate's ratio
    write_idx(tmp_path / "zeros-idx2-ubyte", zeros, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "zeros-idx2-ubyte.gz", ndim=2), zeros)
    for cut in (b"", header[:3], header[:6]):  # empty, cut magic, cut shape
        path.write_bytes(gzip.compress(cut))
        with pytest.raises(DataCorruptError, match="not an IDX file|header truncated"):
            read_idx(path)


def test_a_raw_file_larger_than_its_header_says_is_refused_before_it_is_read(tmp_path):
    """Before: a raw IDX file was read whole before its size was compared with its header, so a large file at an IDX
    name (a 1 TB sparse one here took a MemoryError traceback) was read into memory first. Now its size is checked
    from the file system after the header; an exact file still reads."""
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(struct.pack(">HBB3I", 0, 8, 3, 2, 2, 3) + bytes(range(12)))
    assert read_idx(path, 3).tolist() == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]
    with path.open("r+b") as f:
        f.truncate(1 << 36)  # sparse: 64 GiB that take no disk
    with pytest.raises(DataCorruptError, match=rf"^{path}: IDX header says shape \(2, 2, 3\) \(12 bytes of data\) but "
                                               r"the file holds 68719476720; it is truncated or corrupt$"):
        read_idx(path, 3)
