"""CIFAR-10 pickle batches and SVHN .mat files, written in the real formats with tiny contents."""

import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from deepspike.core.errors import DataCorruptError, DataNotFoundError
from deepspike.data import cifar, load_dataset
from deepspike.data.download import extract_tar


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)


def cifar_rows(n: int, first: int) -> np.ndarray:
    """n rows of 3072 bytes; row k has R[0,0]=first+k, G[0,0]=100+k, B[31,31]=200+k, R[1,0]=50."""
    data = np.zeros((n, 3072), np.uint8)
    for k in range(n):
        data[k, 0] = first + k  # red plane, pixel (0, 0)
        data[k, 1024] = 100 + k  # green plane, pixel (0, 0)
        data[k, 3071] = 200 + k  # blue plane, pixel (31, 31)
        data[k, 32] = 50  # red plane, pixel (1, 0): row-major, 32 pixels per row
    return data


def write_cifar(folder: Path, n: int = 2) -> None:
    """The real layout: pickled dicts with bytes keys (as Python 2 wrote them), 5 train batches + test."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        batch = {b"batch_label": f"training batch {i} of 5".encode(), b"labels": [i, (i + 1) % 10],
                 b"data": cifar_rows(n, 10 * i), b"filenames": [b"a.png", b"b.png"]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    test = {b"batch_label": b"testing batch 1 of 1", b"labels": [9, 8], b"data": cifar_rows(n, 70)}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
             b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"num_cases_per_batch": 10000, b"label_names": names, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def test_cifar_exact_pixels_and_labels(tmp_path):
    write_cifar(tmp_path / "data" / "cifar-10-batches-py")
    data = load_dataset("cifar10", data_dir=tmp_path / "data")
    x, y = data.train.x, data.train.y
    assert x.shape == (10, 3, 32, 32) and data.test.x.shape == (2, 3, 32, 32)
    assert y.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6] and data.test.y.tolist() == [9, 8]
    # batch 3, second image (index 5): R(0,0) = 31, G(0,0) = 101, B(31,31) = 201, R(1,0) = 50
    assert x[5, 0, 0, 0].item() == pytest.approx(31 / 255)
    assert x[5, 1, 0, 0].item() == pytest.approx(101 / 255)
    assert x[5, 2, 31, 31].item() == pytest.approx(201 / 255)
    assert x[5, 0, 1, 0].item() == pytest.approx(50 / 255) and x[5, 0, 0, 1].item() == 0.0
    assert data.test.x[0, 0, 0, 0].item() == pytest.approx(70 / 255)
    assert data.class_names[1] == "automobile" and data.input_shape == (3, 32, 32)


def test_cifar_found_under_env_root(tmp_path, monkeypatch):
    write_cifar(tmp_path / "env" / "cifar10" / "cifar-10-batches-py")
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "env"))
    assert len(load_dataset("cifar10").train) == 10


def test_cifar_missing_one_line(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", data_dir=tmp_path / "nope")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("cifar10")
    assert str(tmp_path / "nope" / "cifar-10-batches-py") in msg
    assert str(tmp_path / "home" / ".cache" / "deepspike" / "cifar-10-batches-py") in msg
    assert "download=True" in msg and "data_batch_1" in msg


class Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar_corrupt_and_unsafe_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "data_batch_2").write_bytes(b"not a pickle at all")
    with pytest.raises(DataCorruptError, match="data_batch_2"):
        load_dataset("cifar10", data_dir=tmp_path)
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [1]}, protocol=2))
    with pytest.raises(DataCorruptError, match="refusing to load posix.getcwd|refusing to load os.getcwd"):
        load_dataset("cifar10", data_dir=tmp_path)
    wrong_shape = {b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}
    (folder / "data_batch_2").write_bytes(pickle.dumps(wrong_shape, protocol=2))
    with pytest.raises(DataCorruptError, match=r"expected uint8 \[N, 3072\]"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_batch_with_keys_of_mixed_types_is_refused_in_one_line(tmp_path):
    """A dict of str and bytes keys without b"data" raised TypeError (sorting the keys for the message)."""
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": 1, b"x": 2, 3: 4}, protocol=2))
    with pytest.raises(DataCorruptError, match=r"data_batch_2 lacks keys b'data'/b'labels'; has \['data', 3, b'x'\]"):
        load_dataset("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize(("labels", "message"), [
    (["a", "b"], "labels are not numbers"), ({1: 2}, "labels are not numbers"),
    (np.array([1 + 3j, 2]), r"labels are not numbers \(an array of complex128\)"),  # was read as [1, 2]
    (np.array(["1", "2"]), r"labels are not numbers \(an array of <U1\)"),
    ([1.7, 2.9], "labels must be whole numbers 0 to 9, got values from 1.7 to 2.9"),
    ([3, 10], "labels must be whole numbers 0 to 9")])
def test_cifar_labels_that_are_no_class_indices_are_refused(tmp_path, labels, message):
    """Strings crashed int(); floats were truncated (1.7 -> 1)."""
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": cifar_rows(2, 0), b"labels": labels}, protocol=2))
    with pytest.raises(DataCorruptError, match=f"^cifar10: .*data_batch_2: {message}"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_label_names_that_are_no_list_of_ten_names_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": 5}, protocol=2))
    with pytest.raises(DataCorruptError, match="batches.meta gives label_names int; expected a list of 10 names"):
        load_dataset("cifar10", data_dir=tmp_path)


def write_svhn(path: Path, labels: list[float]) -> np.ndarray:
    """X [32, 32, 3, N] uint8 (height, width, channel, sample), y [N, 1] float64 as the release stores it, with 10
    meaning digit 0."""
    n = len(labels)
    X = np.zeros((32, 32, 3, n), np.uint8)
    for k in range(n):
        X[0, 0, 0, k] = 10 + k
        X[2, 5, 1, k] = 100 + k  # row 2, column 5, green
        X[31, 30, 2, k] = 200 + k  # row 31, column 30, blue
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"X": X, "y": np.array(labels, np.float64).reshape(n, 1)})
    return X


def test_svhn_exact_pixels_and_label_10_is_zero(tmp_path):
    write_svhn(tmp_path / "svhn" / "train_32x32.mat", [10, 1, 5])
    write_svhn(tmp_path / "svhn" / "test_32x32.mat", [3, 10])
    data = load_dataset("svhn", data_dir=tmp_path)
    assert data.train.y.tolist() == [0, 1, 5] and data.test.y.tolist() == [3, 0]
    x = data.train.x
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    assert x[2, 0, 0, 0].item() == pytest.approx(12 / 255)
    assert x[1, 1, 2, 5].item() == pytest.approx(101 / 255) and x[1, 1, 5, 2].item() == 0.0
    assert x[0, 2, 31, 30].item() == pytest.approx(200 / 255)
    assert x.sum().item() == pytest.approx(sum(10 + k + 100 + k + 200 + k for k in range(3)) / 255)


def test_svhn_images_of_other_than_32x32_pixels_are_refused(tmp_path):
    """X of [8, 8, 3, N] in both files loaded as "svhn" [N, 3, 8, 8] (the docstring says [N, 3, 32, 32], and only
    the channel count was checked); now a one-line DataCorruptError."""
    for split in ("train", "test"):
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": np.zeros((8, 8, 3, 2), np.uint8),
                                                            "y": np.array([[1.0], [2.0]])})
    with pytest.raises(DataCorruptError, match=r"^svhn: \S+train_32x32\.mat has X uint8\[8, 8, 3, 2\] and 2 labels; "
                                               r"expected uint8 \[32, 32, 3, N\] and N labels$"):
        load_dataset("svhn", data_dir=tmp_path)


def test_svhn_missing_and_corrupt(tmp_path):
    with pytest.raises(DataNotFoundError, match="train_32x32.mat") as err:
        load_dataset("svhn", data_dir=tmp_path)
    assert str(tmp_path / "SVHN") in str(err.value) and "\n" not in str(err.value)
    write_svhn(tmp_path / "train_32x32.mat", [1])
    (tmp_path / "test_32x32.mat").write_bytes(b"garbage, not MATLAB")
    with pytest.raises(DataCorruptError, match="test_32x32.mat") as err:
        load_dataset("svhn", data_dir=tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [0, 1.5, 11])
def test_svhn_labels_outside_1_to_10_or_not_whole_are_refused(tmp_path, bad):
    """0 and 1.5 were accepted (the check tested < 0, the cast truncated 1.5 to 1)."""
    write_svhn(tmp_path / "train_32x32.mat", [1, bad])
    write_svhn(tmp_path / "test_32x32.mat", [3])
    with pytest.raises(DataCorruptError, match="train_32x32.mat: labels must be whole numbers 1 to 10"):
        load_dataset("svhn", data_dir=tmp_path)


@pytest.mark.parametrize(("data", "labels", "message"), [
    ([[0] * 3072] * 4000, [0] * 4000, r"holds data as a list; expected a uint8 array \[N, 3072\]"),
    (np.zeros((1, 3072), np.uint8), [[[1] * 3072] * 3000] * 3000, "labels must be a flat list of class indices"),
    (np.zeros((1, 3072), np.uint8), [np.ones(10_000)] * 1000, "labels must be a flat list of class indices"),
    # one 100 KB text listed 10**5 times (a 300 KB file): numpy parsed it 10**5 times (1.8 s per 2,000 repeats of
    # 1 MB: a file of 10**6 took a quarter of an hour) before the labels were refused
    (np.zeros((1, 3072), np.uint8), ["1" * 100_000] * 100_000, r"labels are not numbers \(a str among them"),
    (np.zeros((1, 3072), np.uint8), [b"1" * 100_000] * 100_000, r"labels are not numbers \(a bytes among them")])
def test_cifar_pickles_that_repeat_one_object_are_refused_before_numpy_expands_them(tmp_path, data, labels, message):
    """A pickle lists a repeated object by reference, a few bytes each: the data ``[row] * 4000`` (a 24 KB file) was
    expanded to 98 MB of int64 before its dtype was refused (``[row] * 10**6``: 24 GB), and a 21 KB nest of label lists
    asked numpy for 206 GiB (a MemoryError traceback). Both are refused in one line as they are, before any
    ``np.asarray``."""
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    raw = pickle.dumps({b"data": data, b"labels": labels}, protocol=2)
    assert len(raw) < 1_000_000
    (folder / "data_batch_3").write_bytes(raw)
    with pytest.raises(DataCorruptError, match=f"^cifar10: .*data_batch_3.*{message}"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_svhn_reads_only_x_and_y_of_the_file(tmp_path, monkeypatch):
    """Every variable of the .mat file was read (memory for data the loader never uses: a file may hold more than
    X and y); now only X and y are."""
    import scipy.io

    write_svhn(tmp_path / "train_32x32.mat", [1, 2])
    write_svhn(tmp_path / "test_32x32.mat", [3])
    extra = scipy.io.loadmat(tmp_path / "train_32x32.mat")
    scipy.io.savemat(tmp_path / "train_32x32.mat", {**{k: v for k, v in extra.items() if not k.startswith("__")},
                                                     "big": np.zeros((1000, 1000))})
    held = []
    loadmat = scipy.io.loadmat

    def reading(path, **kw):
        mat = loadmat(path, **kw)
        held.append({k for k in mat if not k.startswith("__")})  # the variables read into memory
        return mat

    monkeypatch.setattr(scipy.io, "loadmat", reading)
    data = load_dataset("svhn", data_dir=tmp_path)
    assert data.train.y.tolist() == [1, 2]
    assert held == [{"X", "y"}, {"X", "y"}]  # before: {"X", "y", "big"} for the train file


def test_a_downloaded_cifar_folder_appears_whole_to_the_other_torchrun_processes(tmp_path, monkeypatch):
    """Every torchrun process loads the data: one that unpacked the archive in place rewrote the files another was
    reading ("cannot unpickle .../data_batch_3: pickle data was truncated" in 1 of 8 two-process tries). The folder
    now appears whole (a rename); another process's stays; the rest of an earlier unpacking is unpacked over."""
    write_cifar(tmp_path / "archived" / cifar.FOLDER)
    archive, root = tmp_path / "c.tar", tmp_path / "root"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "archived" / cifar.FOLDER, arcname=cifar.FOLDER)
    monkeypatch.setattr(cifar, "fetch", lambda resource, folder: archive)
    another = []  # whether another process puts its folder in place while this one unpacks; whether one was there

    def unpack(path, folder):
        assert another[1] or Path(folder) != root  # in place only over the rest of an earlier unpacking
        extract_tar(path, folder)
        if Path(folder) != root:
            assert another[1] or not (root / cifar.FOLDER).exists()  # no reader sees the folder before it is whole
            if another[0]:
                shutil.copytree(tmp_path / "archived" / cifar.FOLDER, root / cifar.FOLDER)
                (root / cifar.FOLDER / "theirs").touch()

    monkeypatch.setattr(cifar, "extract_tar", unpack)
    for ahead, partial, kept in ((False, False, []), (True, False, ["theirs"]), (False, True, [])):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        if partial:  # an unpacking killed part-way, before this version
            (root / cifar.FOLDER).mkdir()
            shutil.copy(tmp_path / "archived" / cifar.FOLDER / "data_batch_1", root / cifar.FOLDER)
        another[:] = [ahead, partial]
        assert len(load_dataset("cifar10", data_dir=root, download=True).train) == 10
        assert os.listdir(root) == [cifar.FOLDER]
        assert [f for f in os.listdir(root / cifar.FOLDER) if f == "theirs"] == kept
