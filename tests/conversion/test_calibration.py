"""Threshold balancing of a converted network (``conversion.calibration``) on a hand-made residual chain."""

import pytest
import torch

from conversion.residual_chain import residual_chain
from deepspike.conversion import neuron_roles
from deepspike.conversion.calibration import balance_thresholds
from deepspike.methods.converted import ConvertedOptions


def test_threshold_valued_spikes_balance_the_residual_stage_even_under_the_unity_rule():
    """A spike that carries its threshold is in the ANN's units, so SPIKE-NORM balances every layer whatever
    ``residual`` says. One pixel 1 (spikes every step) -> stem (w = 2) -> residual unit (body w = 3, identity
    shortcut) -> output (w = 0.5); by hand each layer's largest weighted input is its ANN activation: stem 2,
    body 3 x 2 = 6, junction 6 + 2 = 8, output 0.5 x 8 = 4 (the unity rule would give the stage 1, 1, 1)."""
    options = {"timesteps": 20, "calib_timesteps": 20, "norm": "spike", "residual": "unity", "spike_value": "threshold"}
    ann, snn, arch = residual_chain(options)
    thresholds = balance_thresholds(snn, ann, torch.ones(1, 1, 1, 1), neuron_roles(arch), ConvertedOptions(**options),
                                    seed=0, log=lambda s: None)
    assert thresholds == pytest.approx([2.0, 6.0, 8.0, 4.0])
