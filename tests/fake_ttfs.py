"""A fake TTFS neuron layer for the activity tests: fixed output times, a weight for the fan-out."""

import torch
from torch import nn


class FakeTTFS(nn.Module):
    """A TTFS layer with ``weight`` [M, N] that emits fixed output times (``+inf`` = no spike).

    No ``ttfs_role``: a TTFS layer without one counts as neurons.
    """

    is_ttfs_layer = True

    def __init__(self, n_in, times):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(times.shape[1], n_in))
        self.times = times

    def forward(self, t):
        return self.times
