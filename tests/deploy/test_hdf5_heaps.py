"""Global heap collections that make libhdf5 spin are refused before it reads them; sound ones pass.

The reference is libhdf5 itself: a collection this check refuses keeps h5py reading it past a time limit in a
child process, and files that h5py writes (many texts, long texts, several collections) are never refused.
"""

from __future__ import annotations

import faulthandler
import struct
import subprocess
import sys

import numpy as np
import pytest

from deepspike.core.errors import DataCorruptError
from deepspike.deploy.hdf5_heaps import damaged_global_heap

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
    with pytest.raises(subprocess.TimeoutExpired):  # the reference: libhdf5 never finishes this file
        subprocess.run([sys.executable, "-c", READ_EVERYTHING, str(path)], capture_output=True, timeout=3)


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
    faulthandler.dump_traceback_later(60, exit=True)  # were the heap not checked, libhdf5 would spin: end the run
    try:
        with pytest.raises(DataCorruptError) as e:
            read_nir(path)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert str(e.value) == (f"{path} is not a readable NIR file (HDF5: global heap at byte {start} is damaged: its "
                            f"object at byte {at} (index 0, size 0) would stop the walk through it)")


def test_overlapping_collections_and_a_cut_header_are_refused(tmp_path):
    data = _texts_file(tmp_path / "t.h5").read_bytes()
    start = _collections(data)[0]
    inside = bytearray(data)
    inside[start + 200:start + 205] = b"GCOL\x01"
    (tmp_path / "overlap.h5").write_bytes(bytes(inside))
    assert "overlaps the one before it" in damaged_global_heap(str(tmp_path / "overlap.h5"))
    (tmp_path / "cut.h5").write_bytes(data + b"GCOL\x01\x00\x00")
    assert "is cut short by the end of the file" in damaged_global_heap(str(tmp_path / "cut.h5"))


def test_a_file_whose_lengths_are_not_8_bytes_is_not_walked(tmp_path):
    """The walk assumes h5py's 8-byte lengths; a superblock saying otherwise (version 0: byte 14) is left to
    libhdf5 rather than misread. A version-3 superblock (libver="latest") keeps them at byte 10."""
    path, _ = _damaged(tmp_path, "zero.h5", "free", lambda size: 0)
    data = bytearray(path.read_bytes())
    assert data[:8] == b"\x89HDF\r\n\x1a\n" and data[8] == 0 and data[14] == 8
    data[14] = 4
    (tmp_path / "four.h5").write_bytes(bytes(data))
    assert damaged_global_heap(str(path)) is not None and damaged_global_heap(str(tmp_path / "four.h5")) is None
    with h5py.File(tmp_path / "v3.h5", "w", libver="latest") as f:
        f.create_dataset("t", data=np.array(["a", "bb"], dtype=object), dtype=h5py.string_dtype())
    v3 = (tmp_path / "v3.h5").read_bytes()
    assert v3[8] == 3 and _collections(v3) and damaged_global_heap(str(tmp_path / "v3.h5")) is None
