"""The bfloat16 codec of the numba kernels (``neurons.bfloat16_rows``) against torch's own conversions."""

import numpy as np
import pytest
import torch

pytest.importorskip("numba")

from deepspike.neurons.bfloat16_rows import decode_row, encode_row  # noqa: E402


def test_every_bfloat16_decodes_to_torchs_float32():
    bits = np.arange(1 << 16, dtype=np.uint16)
    out = np.empty(bits.shape[0], dtype=np.float32)
    decode_row(bits, out)
    want = torch.from_numpy(bits.copy()).view(torch.bfloat16).float().numpy()
    assert np.array_equal(out.view(np.uint32), want.view(np.uint32))


def test_encoding_rounds_as_torch_does_and_keeps_a_nan():
    """Random float32 bit patterns (every exponent, subnormals), exact ties (to even, both ways), the largest
    finite values (overflow to infinity), infinities and NaNs."""
    rng = np.random.default_rng(0)
    ties = (rng.integers(0, 1 << 16, 50_000).astype(np.uint32) << 16) | 0x8000
    edges = np.array([0x7F7FFFFF, 0x7F7F8000, 0xFF7F8000, 0x3F808000, 0x3F818000, 0x00008000, 0x80018000,
                      0x7F800000, 0xFF800000, 0x00000000, 0x80000000, 0x7FC00001, 0xFFFFFFFF, 0x7F800001], np.uint32)
    bits = np.concatenate([rng.integers(0, 1 << 32, 500_000, dtype=np.uint64).astype(np.uint32), ties, edges])
    values = bits.view(np.float32)
    got = np.empty(values.shape[0], dtype=np.uint16)
    encode_row(values, got)
    want = torch.from_numpy(values.copy()).bfloat16()
    nan = np.isnan(values)
    assert np.array_equal(got[~nan], want.view(torch.uint16).numpy()[~nan])
    assert nan.sum() > 1000 and (got[nan] == 0x7FC0).all()  # torch writes a NaN too (0x7FC0 or 0xFFFF)
    assert (got[-14:-9] == [0x7F80, 0x7F80, 0xFF80, 0x3F80, 0x3F82]).all()  # overflow to infinity; ties to even
