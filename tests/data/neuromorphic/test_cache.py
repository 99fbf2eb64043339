"""The event-frame cache: the key of a set of files, damaged entries built again."""

import os

import numpy as np
import pytest

from deepspike.data.neuromorphic.cache import cached_arrays, files_fingerprint


def test_the_fingerprint_follows_names_sizes_and_rewrites(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"1234")
    b.write_bytes(b"xy")
    os.utime(a, ns=(10**18, 10**18))
    first = files_fingerprint([a, b])
    assert files_fingerprint([b, a]) == first  # the order given does not matter
    a.write_bytes(b"5678")  # the same size, rewritten: a stale cache entry must not be read back
    os.utime(a, ns=(10**18 + 1, 10**18 + 1))
    assert files_fingerprint([a, b]) != first
    assert files_fingerprint([a]) != files_fingerprint([a, b])


@pytest.mark.parametrize("damage", ["cut", "flipped byte", "labels of another length", "a shape past memory",
                                    "an unclosed header", "an unknown compression", "an encryption flag",
                                    "float64 frames", "float labels"])
def test_a_damaged_entry_is_built_again(tmp_path, damage):
    """A cut entry or one with a flipped byte (a bad zip or CRC) raised zipfile's BadZipFile through the run; a header
    whose shape claims more than the machine has made numpy's allocation raise MemoryError through it; a member's
    compression method or encryption flag changed (a byte of its zip header) raised zipfile's NotImplementedError or
    RuntimeError through it. Float64 frames (8 times the bytes the header's shape was checked for) and float labels
    (cut to whole ones later) were read back as they were."""
    x, y = (np.arange(24_000) % 251).astype(np.uint8).reshape(4, 6000), np.array([0, 1, 2, 3])  # x: more than
    builds = []  # zipfile's first read of 4 KB, so that its CRC check comes after numpy read the header

    def build():
        builds.append(1)
        return x, y

    cached_arrays(tmp_path, {"dataset": "d"}, build)
    (entry,) = tmp_path.glob("d-*.npz")
    raw = bytearray(entry.read_bytes())
    if damage == "cut":
        raw = raw[: len(raw) // 2]
    elif damage == "flipped byte":
        raw[raw.index(b"\x05\x06\x07")] ^= 0xFF  # inside x's data
    elif damage == "a shape past memory":  # x's header, the same length (its padding shortened): 2.4e16 bytes
        at = raw.index(b"(4, 6000), }")
        claim = b"(4000000000000, 6000), }"
        assert raw[at + len(claim) - 1] == ord(" ")
        raw[at:at + len(claim)] = claim
    elif damage == "an unclosed header":  # tokenize's TokenError went through the run
        at = raw.index(b"(4, 6000), }")
        raw[at:at + 12] = b"(4, 6000 , }"
    elif damage in ("an unknown compression", "an encryption flag"):  # x.npy's entry in the zip's central directory
        at = raw.index(b"PK\x01\x02")
        assert raw[at + 46:at + 51] == b"x.npy"
        if damage == "an unknown compression":
            raw[at + 10] = 99  # the method (0: stored)
        else:
            raw[at + 8] |= 1  # bit 0 of the flags: encrypted
    elif damage == "float64 frames":
        np.savez(entry, x=x.astype(np.float64), y=y)
        raw = bytearray(entry.read_bytes())
    elif damage == "float labels":
        np.savez(entry, x=x, y=y + 0.5)
        raw = bytearray(entry.read_bytes())
    else:
        np.savez(entry, x=x, y=y[:3])
        raw = bytearray(entry.read_bytes())
    entry.write_bytes(bytes(raw))
    got_x, got_y = cached_arrays(tmp_path, {"dataset": "d"}, build)
    assert len(builds) == 2 and np.array_equal(got_x, x) and np.array_equal(got_y, y)
    assert entry.stat().st_mode & 0o777 == 0o666 & ~_umask()  # readable by the others a shared cache serves


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
