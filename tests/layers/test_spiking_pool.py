"""lee2020's spiking average pooling (``layers.spiking_pool``) against spike trains worked out by hand."""

import torch

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
