"""The walk through a MATLAB 5 file's variable headers (``data.matfile``) that keeps scipy's reader from crashing the
process: files written by scipy in the real layout, then one header byte changed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from deepspike.core.errors import DataCorruptError
from deepspike.data import load_dataset
from deepspike.data.matfile import mat5_problem


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)


def _write(path, compress=False, **arrays):
    arrays = arrays or {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1.0], [10.0]])}
    scipy.io.savemat(path, arrays, do_compression=compress)
    return path


def test_real_numeric_variables_pass_plain_or_compressed_and_other_variables_are_not_judged(tmp_path):
    assert mat5_problem(_write(tmp_path / "a.mat"), ("X", "y")) is None
    assert mat5_problem(_write(tmp_path / "b.mat", True), ("X", "y")) is None
    text = _write(tmp_path / "c.mat", True, X=np.zeros((2, 2), np.uint8), y=np.ones((2, 1)), note="text")
    assert mat5_problem(text, ("X", "y")) is None
    assert mat5_problem(text, ("note",)) == "variable 'note' is of class 4, not a real numeric array (classes 6 to 15)"
    complex_x = _write(tmp_path / "d.mat", True, X=np.zeros((2, 2), np.complex64), y=np.ones((2, 1)))
    assert mat5_problem(complex_x, ("X", "y")) == ("variable 'X' is of class 7 (complex), not a real numeric array "
                                                   "(classes 6 to 15)")
    (tmp_path / "e.mat").write_bytes(b"not a MATLAB file")
    assert mat5_problem(tmp_path / "e.mat", ("X",)) is None  # scipy says what it is not
    for compress in (False, True):  # a name of 601 characters: the walk reads 504 bytes of each variable's header
        long_name = _write(tmp_path / f"g{compress}.mat", compress, **{"X" + "a" * 600: np.zeros((2, 2), np.uint8)})
        assert mat5_problem(long_name, ("X", "y")) == "a variable's header runs past 504 bytes"
    v73 = bytearray(complex_x.read_bytes())
    v73[124:126] = b"\x00\x02"  # version 0x0200: a 7.3 file (HDF5), which scipy refuses itself; not walked
    (tmp_path / "f.mat").write_bytes(bytes(v73))
    assert mat5_problem(tmp_path / "f.mat", ("X",)) is None


@pytest.mark.parametrize("damage", ["complex flag of X", "element type of y"])
def test_headers_that_crashed_scipys_reader_are_refused_in_one_line(tmp_path, damage):
    """scipy 1.17's loadmat crashed the process (a segmentation fault) on each of these one-byte changes of a real
    file: X flagged complex with no imaginary part stored, y's values stored as element type 0x89 (no number)."""
    (tmp_path / "svhn").mkdir()
    for split in ("train", "test"):
        _write(tmp_path / "svhn" / f"{split}_32x32.mat")
    path = tmp_path / "svhn" / "train_32x32.mat"
    data = bytearray(path.read_bytes())
    if damage == "complex flag of X":
        assert data[136:140] == b"\x06\x00\x00\x00" and data[144] == 9  # X's flags (miUINT32): class 9, uint8
        data[145] |= 0x08  # bit 11 of the flags: complex
        message = r"variable 'X' is of class 9 \(complex\)"
    else:
        at = data.find(b"\x01\x00\x01\x00y\x00\x00\x00") + 8  # y's name (a small element), then its real part's tag
        assert data[at] == 0x09  # miDOUBLE
        data[at] = 0x89
        message = "variable 'y' stores its values as element type 137, which is no number type"
    path.write_bytes(bytes(data))
    with pytest.raises(DataCorruptError, match=f"^svhn: .*train_32x32.mat: {message}.*; the file is damaged$"):
        load_dataset("svhn", data_dir=tmp_path)
