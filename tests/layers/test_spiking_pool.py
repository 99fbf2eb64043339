"""lee2020's spiking average pooling (``layers.spiking_pool``) against spike trains worked out by hand."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.spiking_pool import SpikingAvgPool


def test_pooling_neuron_keeps_its_membrane_without_leak():
    """lee2020's pooling neuron integrates without leak. One 2x2 window, T = 100: two pixels spike at t = 1,
    the other two at t = 100. By hand with the default threshold 0.75: p = 0.5 at t = 1 (no spike, h = 0.5 held
    through t = 99), p = 0.5 at t = 100 -> h = 1.0 > 0.75: one spike, at index 99. (Leak 0.99 would leave
    0.5 x 0.99^99 + 0.5 = 0.68: none.)"""
    x = torch.zeros(100, 1, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0  # the top row at t = 1
    x[99, 0, 0, 1] = 1.0  # the bottom row at t = 100
    pool = SpikingAvgPool()
    assert pool.threshold == 0.75
    out = pool(x)
    assert out.shape == (100, 1, 1, 1, 1)
    assert out.flatten().nonzero().flatten().tolist() == [99]


@pytest.mark.parametrize("kwargs, name", [
    ({"kernel_size": 0}, "kernel_size"), ({"kernel_size": 2.0}, "kernel_size"), ({"kernel_size": True}, "kernel_size"),
    ({"stride": -1}, "stride"), ({"stride": 0}, "stride"), ({"stride": 2.5}, "stride"),
    ({"padding": 0.5, "kernel_size": 2}, "padding"), ({"threshold": math.inf}, "threshold"),
    ({"threshold": math.nan}, "threshold"), ({"threshold": 0}, "threshold"),
])
def test_bad_window_or_threshold_is_refused_at_construction_in_one_line(kwargs, name):
    """Checked when built, not in ``F.avg_pool2d`` (a RuntimeError / TypeError at the first forward): stride=0
    had silently become the kernel size, threshold=inf a pooling neuron that never fires."""
    with pytest.raises(ConfigError, match=f"SpikingAvgPool {name}=") as caught:
        SpikingAvgPool(**kwargs)
    assert "\n" not in str(caught.value)


def test_explicit_stride_and_padding_still_build_and_pool():
    out = SpikingAvgPool(3, stride=2, threshold=0.3, padding=1)(torch.ones(2, 1, 1, 5, 5))
    assert out.shape == (2, 1, 1, 3, 3)
