"""``TensorDataset``: what it takes as labels, and the batches it gathers."""

import pytest
import torch

from deepspike.core.errors import DataCorruptError
from deepspike.data import TensorDataset


@pytest.mark.parametrize("labels", [[0.0, 1.7], [0.5, 1.0], [0.0, float("nan")], [float("inf"), 1.0]])
def test_float_labels_that_are_not_whole_numbers_are_one_data_corrupt_error_line(labels):
    """They were cast to int64: 1.7 became class 1, 0.5 class 0, NaN -2**63, with nothing said."""
    with pytest.raises(DataCorruptError, match="^mine: the labels are not all whole numbers \\(class indices\\)$"):
        TensorDataset(torch.zeros(2, 1, 2, 2), torch.tensor(labels), "mine")


def test_whole_float_labels_become_int64_and_a_batch_is_one_gather():
    ds = TensorDataset(torch.arange(12.0).view(3, 1, 2, 2), torch.tensor([2.0, 0.0, 1.0]))
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == [2, 0, 1]
    x, y = ds[torch.tensor([2, 0])]
    assert x[:, 0, 0, 0].tolist() == [8.0, 0.0] and y.tolist() == [1, 2]
    assert ds.subset(torch.tensor([1])).y.tolist() == [0] and ds.shape == (1, 2, 2)
