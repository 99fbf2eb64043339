"""The event-frame cache key of a set of files."""

import os

from deepspike.data.neuromorphic.cache import files_fingerprint


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
