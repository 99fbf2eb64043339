"""Downloads against a local HTTP server on 127.0.0.1: checksums, atomic writes, errors, end to end."""

import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from functools import partial

import numpy as np
import pytest

from deepspike.core.atomic import FILE_MODE
from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.data import Resource, cifar, download_file, extract_tar, fetch, load_dataset, mnist
from sync_events import sync_events


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 (a free port) in a thread; yields (base url, folder, request log)."""
    root = tmp_path / "www"
    root.mkdir()
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            log.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, log
    httpd.shutdown()
    httpd.server_close()


def test_download_with_md5_and_sha256(server, tmp_path):
    url, www, _ = server
    payload = b"spiking networks\n" * 1000
    (www / "f.bin").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    sha = hashlib.sha256(payload).hexdigest()
    out = download_file(url + "f.bin", tmp_path / "out" / "f.bin", "md5:" + md5)
    assert out.read_bytes() == payload
    out = download_file(url + "f.bin", tmp_path / "out" / "g.bin", "sha256:" + sha.upper())
    assert out.read_bytes() == payload
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f.bin", "g.bin"]  # no temp files left
    assert out.stat().st_mode & 0o777 == FILE_MODE  # mkstemp's 0600 left a shared data folder unreadable to others


def test_checksum_mismatch_leaves_nothing_and_keeps_old_file(server, tmp_path):
    url, www, _ = server
    (www / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DataCorruptError, match="checksum mismatch") as err:
        download_file(url + "f.bin", dest, "md5:" + hashlib.md5(b"original").hexdigest())
    assert "\n" not in str(err.value) and hashlib.md5(b"tampered").hexdigest() in str(err.value)
    assert list((tmp_path / "out").iterdir()) == []
    dest.write_bytes(b"old copy")
    with pytest.raises(DataCorruptError):
        download_file(url + "f.bin", dest, "sha256:" + "0" * 64)
    assert dest.read_bytes() == b"old copy" and list((tmp_path / "out").iterdir()) == [dest]


def test_http_error_and_bad_checksum_spec(server, tmp_path):
    url, _, _ = server
    with pytest.raises(DataNotFoundError, match="404") as err:
        download_file(url + "missing.bin", tmp_path / "m.bin", "md5:" + "0" * 32)
    assert "\n" not in str(err.value) and not (tmp_path / "m.bin").exists()
    with pytest.raises(ConfigError, match="checksum"):
        download_file(url + "x", tmp_path / "x", "crc32:1234")


def test_fetch_skips_a_verified_file(server, tmp_path):
    url, _, log = server
    (tmp_path / "have.bin").write_bytes(b"abc")
    res = Resource("have.bin", url + "have.bin", "md5:" + hashlib.md5(b"abc").hexdigest())
    assert fetch(res, tmp_path).read_bytes() == b"abc"
    assert log == []  # no request was made


def idx_gz(arr: np.ndarray) -> bytes:
    raw = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    return gzip.compress(raw)


def test_mnist_downloads_only_when_asked(server, tmp_path, monkeypatch):
    url, www, log = server
    files = {
        "train-images-idx3-ubyte.gz": idx_gz(np.full((2, 28, 28), 51, np.uint8)),
        "train-labels-idx1-ubyte.gz": idx_gz(np.array([4, 2], np.uint8)),
        "t10k-images-idx3-ubyte.gz": idx_gz(np.zeros((1, 28, 28), np.uint8)),
        "t10k-labels-idx1-ubyte.gz": idx_gz(np.array([9], np.uint8)),
    }
    resources = []
    for name, data in files.items():
        (www / name).write_bytes(data)
        resources.append(Resource(name, url + name, "md5:" + hashlib.md5(data).hexdigest()))
    monkeypatch.setattr(mnist, "MNIST_RESOURCES", tuple(resources))
    with pytest.raises(DataNotFoundError, match="download=True"):
        load_dataset("mnist", data_dir=tmp_path / "data")
    assert log == []  # never downloads unless asked
    data = load_dataset("mnist", data_dir=tmp_path / "data", download=True)
    assert data.train.y.tolist() == [4, 2] and data.train.x[1, 0, 5, 5].item() == pytest.approx(0.2)
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(files)
    assert len(log) == 4
    load_dataset("mnist", data_dir=tmp_path / "data", download=True)
    assert len(log) == 4  # found on disk the second time


def cifar_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for k, name in enumerate(names):
            batch = {b"data": np.full((1, 3072), k, np.uint8), b"labels": [k]}
            blob = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def test_cifar_download_and_extract(server, tmp_path, monkeypatch):
    url, www, _ = server
    blob = cifar_tar()
    (www / "c.tar.gz").write_bytes(blob)
    monkeypatch.setattr(cifar, "RESOURCE", Resource("c.tar.gz", url + "c.tar.gz",
                                                    "sha256:" + hashlib.sha256(blob).hexdigest()))
    data = load_dataset("cifar10", download=True)  # into ~/.cache/deepspike
    assert data.train.y.tolist() == [0, 1, 2, 3, 4] and data.test.y.tolist() == [5]
    assert data.train.x[3].max().item() == pytest.approx(3 / 255)
    assert (tmp_path / "home" / ".cache" / "deepspike" / "cifar-10-batches-py" / "test_batch").is_file()


def test_extract_tar_refuses_escaping_members(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "a.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(DataCorruptError, match="outside"):
        extract_tar(tmp_path / "a.tar.gz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    (tmp_path / "b.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(DataCorruptError, match="cannot extract"):
        extract_tar(tmp_path / "b.tar.gz", tmp_path / "out")


@pytest.mark.parametrize("length", [242, 250, 255])
def test_a_long_file_name_that_is_allowed_downloads(server, tmp_path, length):
    """A file name of 242 to 255 bytes is legal, but its temporary ``.NAME.XXXXXXXX.part`` was not: the download
    failed with "File name too long"; the temporary name is now cut as ``core.atomic``'s is."""
    url, www, _ = server
    name = "d" * (length - 4) + ".bin"
    payload = b"long name\n"
    (www / name).write_bytes(payload)
    out = download_file(url + name, tmp_path / "out" / name, "sha256:" + hashlib.sha256(payload).hexdigest())
    assert out.read_bytes() == payload
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]


def test_the_download_is_synced_before_and_after_its_rename(server, tmp_path, monkeypatch):
    """As every atomic write (core.atomic): the file's bytes, then the rename, then the folder; before, neither was
    synced, so a power cut after the rename could leave an empty or partial file under the verified name."""
    url, www, _ = server
    (www / "f.bin").write_bytes(b"abc")
    events = sync_events(monkeypatch)
    download_file(url + "f.bin", tmp_path / "f.bin", "md5:" + hashlib.md5(b"abc").hexdigest())
    assert events == ["file", "rename", "folder"] and (tmp_path / "f.bin").read_bytes() == b"abc"
