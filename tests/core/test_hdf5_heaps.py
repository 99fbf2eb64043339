"""Global heap collections that make libhdf5 spin are refused before it reads them; sound ones pass.

The reference is libhdf5 itself: a collection this check refuses keeps h5py reading it past a time limit in a
child process, and files that h5py writes (many texts, long texts, several collections) are never refused.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from deepspike.core.errors import DataCorruptError
from deepspike.core.hdf5_heaps import damaged_global_heap, length_size

h5py = pytest.importorskip("h5py")
pytest.importorskip("nir")
from deepspike.deploy import read_nir  # noqa: E402
from deploy.nir_files import tiny_graph, write  # noqa: E402

READ_EVERYTHING = """
import sys, h5py
def walk(group):
    for item in group.values():
        walk(item) if isinstance(item, h5py.Group) else item[()]
with h5py.File(sys.argv[1], "r") as f:
    walk(f)
"""

READ_NIR = """
import sys
from deepspike.deploy import read_nir
try:
    read_nir(sys.argv[1])
except Exception as e:
    print(type(e).__name__, e)
"""


def _texts_file(path, count: int = 300, long: int = 0):
    """An HDF5 file of variable-length texts (they live in global heaps): ``count`` short ones, one of ``long``
    characters if asked; then 32 KiB of zeros, written after the texts' heap."""
    texts = [f"node_{i}" * (1 + i % 5) for i in range(count)] + (["x" * long] if long else [])
    with h5py.File(path, "w") as f:
        f.create_dataset("texts", data=np.array(texts, dtype=object), dtype=h5py.string_dtype())
        f.attrs["note"] = "a sound file"
        f.flush()
        f.create_dataset("zeros", data=np.zeros(4096))
    return path


def _collections(data: bytes) -> list[int]:
    found, at = [], data.find(b"GCOL\x01")
    while at != -1:
        found.append(at)
        at = data.find(b"GCOL\x01", at + 1)
    return found


def _free_space_header(data: bytes, start: int) -> int:
    """Byte offset of the free-space object (index 0) of the collection at ``start``, walked by hand."""
    at = start + 16
    while struct.unpack_from("<H", data, at)[0] != 0:
        at += 16 + -(-struct.unpack_from("<Q", data, at + 8)[0] // 8) * 8
    return at


def _damaged(tmp_path, name: str, field: str, new_size):
    """The texts file with the size of its first collection (``field`` "collection") or of that collection's
    free space ("free") replaced by ``new_size(old size)``."""
    data = bytearray(_texts_file(tmp_path / "sound.h5").read_bytes())
    start = _collections(bytes(data))[0]
    where = start + 8 if field == "collection" else _free_space_header(bytes(data), start) + 8
    data[where:where + 8] = struct.pack("<Q", new_size(struct.unpack_from("<Q", data, where)[0]))
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path, start


@pytest.mark.parametrize(("count", "long"), [(1, 0), (300, 0), (3000, 0), (10, 20_000)])
def test_files_h5py_writes_are_never_refused(tmp_path, count, long):
    path = _texts_file(tmp_path / "t.h5", count, long)
    assert _collections(path.read_bytes())  # the texts did go into global heaps
    assert damaged_global_heap(str(path)) is None
    assert damaged_global_heap(str(write(tiny_graph(), tmp_path / "m.nir"))) is None


def test_a_free_space_of_size_zero_is_refused_and_would_make_libhdf5_spin(tmp_path):
    path, start = _damaged(tmp_path, "zero.h5", "free", lambda size: 0)
    problem = damaged_global_heap(str(path))
    assert problem is not None and problem.startswith(f"global heap at byte {start} is damaged: its object at byte")
    assert "(index 0, size 0)" in problem
    # the reference, libhdf5 itself: it reads the sound file in some time d, and is still reading this one after
    # 5 d (at least 3 s), where it is spinning on the heap
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", READ_EVERYTHING, str(tmp_path / "sound.h5")], check=True, timeout=60)
    sound = time.perf_counter() - started
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", READ_EVERYTHING, str(path)], capture_output=True,
                       timeout=max(3.0, 5 * sound))


@pytest.mark.parametrize(("field", "new_size", "problem"), [
    ("collection", lambda size: size + 4096, "would stop the walk"),  # on through the bytes after it
    ("free", lambda size: 2**64 - 64, "would stop the walk"),  # wraps the walk backwards
    ("free", lambda size: size - 4, "would stop the walk"),  # not a multiple of 8
])
def test_damaged_collection_sizes_are_refused(tmp_path, field, new_size, problem):
    path, start = _damaged(tmp_path, "bad.h5", field, new_size)
    assert problem in damaged_global_heap(str(path))


@pytest.mark.parametrize("new_size", [lambda size: 2**40, lambda size: size + 2**16])
def test_a_collection_past_the_end_of_the_file_is_left_to_libhdf5_which_refuses_it(tmp_path, new_size):
    path, start = _damaged(tmp_path, "past.h5", "collection", new_size)
    assert damaged_global_heap(str(path)) is None
    result = subprocess.run([sys.executable, "-c", READ_EVERYTHING, str(path)], capture_output=True, timeout=60)
    assert result.returncode == 1 and b"actual len exceeds EOA" in result.stderr


def test_read_nir_refuses_a_damaged_heap_in_one_line(tmp_path):
    data = bytearray(write(tiny_graph(), tmp_path / "m.nir").read_bytes())
    start = _collections(bytes(data))[0]
    at = _free_space_header(bytes(data), start)
    data[at + 8:at + 16] = bytes(8)
    path = tmp_path / "spin.nir"
    path.write_bytes(bytes(data))
    # in a child with a time limit: were the heap not checked, libhdf5 would spin and the test should fail, not hang
    result = subprocess.run([sys.executable, "-c", READ_NIR, str(path)], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("DataCorruptError ")
    with pytest.raises(DataCorruptError) as e:
        read_nir(path)
    assert str(e.value) == (f"{path} is not a readable NIR file (HDF5: global heap at byte {start} is damaged: its "
                            f"object at byte {at} (index 0, size 0) would stop the walk through it)")


def test_a_signature_cut_short_by_the_end_of_the_file_is_no_heap(tmp_path):
    data = _texts_file(tmp_path / "t.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data + b"GCOL\x01\x00\x00")  # nothing points there; libhdf5 never reads it
    assert damaged_global_heap(str(tmp_path / "cut.h5")) is None


@pytest.mark.parametrize("width", [2, 4, 8])
def test_lengths_of_every_width_are_walked(tmp_path, width):
    """The size fields are as wide as the superblock's "size of lengths" (h5py writes 8; HDF5 allows 2 and 4), the
    headers 16 bytes in every case. A sound file passes; a free space of size 0 is refused at each width (read as
    8 bytes, a 4-byte field with non-zero padding after it passed, and libhdf5 spun)."""
    path = tmp_path / f"w{width}.h5"
    plist = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    plist.set_sizes(8, width)
    with h5py.File(h5py.h5f.create(str(path).encode(), h5py.h5f.ACC_TRUNC, fcpl=plist)) as f:
        f.create_dataset("texts", data=np.array([f"t{i}" * (1 + i % 4) for i in range(200)], dtype=object),
                         dtype=h5py.string_dtype())
    data = bytearray(path.read_bytes())
    assert length_size(data) == width and damaged_global_heap(str(path)) is None
    start = _collections(bytes(data))[0]
    at = start + 16
    while int.from_bytes(data[at:at + 2], "little") != 0:  # to the free space, by hand
        at += 16 + -(-int.from_bytes(data[at + 8:at + 8 + width], "little") // 8) * 8
    data[at + 8:at + 16] = bytes(width) + b"\x01" * (8 - width)  # size 0, the padding after it not zero
    path.write_bytes(bytes(data))
    assert "(index 0, size 0) would stop the walk" in damaged_global_heap(str(path))


def test_text_that_holds_the_signature_is_not_refused(tmp_path):
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("t", data=np.array(["GCOL\x01 in a name", "more GCOL\x01"], dtype=object),
                         dtype=h5py.string_dtype())
    assert len(_collections(path.read_bytes())) == 3  # the real heap and the two texts inside it
    assert damaged_global_heap(str(path)) is None


def test_lengths_of_another_width_and_tangled_heaps_are_refused(tmp_path):
    data = bytearray(_texts_file(tmp_path / "t.h5").read_bytes())
    assert data[8] == 0 and data[14] == 8  # a version 0 superblock keeps the size of lengths at byte 14
    data[14] = 16
    (tmp_path / "w16.h5").write_bytes(bytes(data))
    assert damaged_global_heap(str(tmp_path / "w16.h5")) == ("its lengths are 16 bytes wide, which is not read "
                                                            "(2, 4 or 8)")
    # one heap of 100 objects, each holding a text that is itself a collection header reaching the heap's end:
    # walking every one of them takes 100 + 99 + ... steps, far more than one per 8 bytes of the file
    prefix = _texts_file(tmp_path / "u.h5").read_bytes()[:2048]  # a superblock, no heap
    first, count = len(prefix), 100
    end = first + 16 + 32 * count
    objects = b"".join(struct.pack("<HHIQ", 1, 0, 0, 16) + b"GCOL\x01\x00\x00\x00"
                       + struct.pack("<Q", end - (first + 16 + 32 * k + 16)) for k in range(count))
    (tmp_path / "tangled.h5").write_bytes(prefix + b"GCOL\x01\x00\x00\x00" + struct.pack("<Q", end - first) + objects)
    assert "more objects than the file has room for" in damaged_global_heap(str(tmp_path / "tangled.h5"))
