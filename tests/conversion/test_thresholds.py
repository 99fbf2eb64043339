"""SPIKE-NORM's residual rules on a hand-made residual chain."""

import pytest
import torch

from conversion.residual_chain import residual_chain
from deepspike.conversion import chunked_neurons, neuron_roles
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


class Interrupted(Exception):
    pass


def test_spike_norm_gives_the_net_its_training_mode_back_when_a_layer_raises():
    """A module that raises on the way (here the second neuron layer, while its peak is being found) stops SPIKE-NORM;
    the net, in training mode before, is in training mode again (before: left in eval mode, every submodule too)."""
    _, snn, arch = residual_chain({"timesteps": 20})
    snn.train()

    def fail(module, args):
        raise Interrupted

    chunked_neurons(snn)[1].register_forward_pre_hook(fail)
    done = []
    with pytest.raises(Interrupted):
        spike_norm(snn, torch.ones(1, 1, 1, 1), neuron_roles(arch), timesteps=20, residual="balanced",
                   progress=lambda i, th: done.append(i))
    assert done == [0]  # the first layer was balanced, the second raised
    assert snn.training and all(m.training for m in snn.modules())
