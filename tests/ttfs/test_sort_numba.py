"""The radix argsort that orders each sample's spike times for the numba event sweep."""

import numpy as np
import pytest

from deepspike.ttfs.sort_numba import argsort_rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_radix_argsort_equals_stable_argsort(dtype):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(6, 517)) * 10).astype(dtype)
    x[:, ::3] = np.round(x[:, ::3]) + 0.0  # ties (+ 0.0: no -0.0, which numpy ties with 0.0)
    x[0, :40] = np.inf
    x[1, :] = 2.5  # every key equal: all passes skipped
    x[2, ::2] = -x[2, ::2] + 0.0
    x[3, :5] = np.finfo(dtype).max
    x[3, 5:10] = -np.finfo(dtype).max
    x[4, :7] = np.finfo(dtype).tiny / 4  # subnormals
    order = argsort_rows(x)
    assert order.dtype == np.int64 and order.shape == x.shape
    np.testing.assert_array_equal(order, np.argsort(x, axis=1, kind="stable"))


def test_negative_zero_sorts_as_a_tie_of_zero():
    x = np.array([[0.0, -0.0, -1.0, 1.0, -0.0, np.inf]], dtype=np.float32)
    order = argsort_rows(x)[0]
    assert sorted(order.tolist()) == list(range(6))
    assert order[0] == 2 and order[-2:].tolist() == [3, 5]
    assert set(order[1:4].tolist()) == {0, 1, 4}
    assert np.all(np.diff(x[0, order][:-1]) >= 0)


def test_rejects_non_float_or_non_2d():
    with pytest.raises(TypeError, match="2-D float32/float64"):
        argsort_rows(np.zeros((3, 4), dtype=np.int32))
    with pytest.raises(TypeError, match="2-D float32/float64"):
        argsort_rows(np.zeros(4, dtype=np.float32))
