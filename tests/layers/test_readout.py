"""Readouts of rate-coded nets: the membrane integrator against its formula by hand."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.readout import MembraneReadout


def test_a_leaky_membrane_readout_weights_late_steps_most():
    """``V_T / T = sum_t decay^(T - t) x_t / T``: T = 3, decay 0.5, x = [4, 2, 1] (one sample, one class) gives
    (0.25 * 4 + 0.5 * 2 + 1 * 1) / 3 = 1; decay 1 gives the mean 7/3."""
    x = torch.tensor([4.0, 2.0, 1.0]).view(3, 1, 1)  # [T, B, K]
    assert MembraneReadout(0.5)(x).item() == pytest.approx(1.0)
    assert MembraneReadout(1.0)(x).item() == pytest.approx(7 / 3)
    assert torch.equal(MembraneReadout(1.0).steps(x), x)
    with pytest.raises(ConfigError, match="decay 1, not 0.5"):
        MembraneReadout(0.5).steps(x)
