"""The percentile of a layer's positive outputs: numpy's linear rule, computed from the largest values only (the few
the rule reads), equal to ``np.percentile`` over every value; the kept values do not grow with the images."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.conversion.activation_peaks import ActivationPeaks, linear_percentile


@pytest.mark.parametrize("percentile", [0.0, 12.5, 50.0, 99.0, 99.9, 99.99, 100.0])
@pytest.mark.parametrize("count", [1, 2, 7, 1000, 12345])
def test_the_percentile_of_the_largest_values_is_numpys_of_all(percentile, count):
    values = (np.random.default_rng(count).random(count) * 3).astype(np.float32)
    q = percentile / 100
    needed = count - math.floor(q * (count - 1))  # the fewest largest values the rule reads
    top = np.sort(values)[count - needed:]
    assert linear_percentile(top, count, percentile) == float(np.percentile(values, percentile))
    assert linear_percentile(values, count, percentile) == float(np.percentile(values, percentile))


def test_a_layers_kept_values_are_bounded_by_all_images_not_grown_with_them():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Flatten(), nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 5))
    x = torch.randn(600, 1, 4, 4)
    peaks = ActivationPeaks(99.9, samples=600)
    for chunk in x.split(50):
        peaks.update(ann, chunk)
    with torch.no_grad():
        hidden, out = ann[:3](x), ann(x)
    by_numpy = [float(np.percentile(a[a > 0].numpy(), 99.9)) for a in (hidden, out)]
    assert peaks.peaks() == by_numpy
    most = 600 * 64
    assert peaks._records[0][0].numel() == most - math.floor(0.999 * (most - 1))  # 39 of 38,400 outputs
    assert ActivationPeaks(99.9).peaks() == []
