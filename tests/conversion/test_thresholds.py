"""SPIKE-NORM's residual rules on a hand-made residual chain."""

import pytest
import torch

from conversion.residual_chain import residual_chain
from deepspike.conversion import neuron_roles
from deepspike.conversion.thresholds import spike_norm


def test_spike_norm_balances_the_residual_stage_under_the_balanced_rule():
    """sengupta2019 section 6 baseline (``balanced``): every layer's threshold is its largest weighted spike input.
    By hand, with every layer firing at every step: stem 2 x 1 = 2, body 3 x 1 = 3, junction body + shortcut spikes
    1 + 1 = 2, output 0.5 x 1 = 0.5. The ``unity`` rule keeps the residual stage (stem, body, junction) at 1."""
    _, snn, arch = residual_chain({"timesteps": 20})
    roles = neuron_roles(arch)
    x = torch.ones(1, 1, 1, 1)
    assert roles == ["stem", "residual", "junction", "output"]
    assert spike_norm(snn, x, roles, timesteps=20, residual="balanced") == pytest.approx([2.0, 3.0, 2.0, 0.5])
    assert spike_norm(snn, x, roles, timesteps=20, residual="unity") == pytest.approx([1.0, 1.0, 1.0, 0.5])
