"""``deploy.nir_init_learnable``: a learnable layer's decay and threshold taken from a file's neurons at the layer's
granularity, and the per-channel gain the weights before it are divided by, checked by hand (the whole start,
file to trained net, is tested in ``test_nir_init.py``)."""

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_init_learnable import channel_gain, granular, start_learnable
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.modules import LIF
from deepspike.neurons.params import NeuronParams

WHERE = "layer 0"


def test_granular_takes_one_value_per_channel_only_when_each_channel_shares_it():
    per_channel = LearnableLIF(NeuronParams(decay=0.5), channels=2)
    values = torch.tensor([[0.2, 0.2, 0.2], [0.7, 0.7, 0.7]])  # [C = 2, 3 neurons each]
    assert torch.equal(granular(values, per_channel, "decay", WHERE), torch.tensor([0.2, 0.7]))
    assert torch.equal(granular(torch.tensor(0.3), per_channel, "decay", WHERE), torch.tensor([0.3, 0.3]))
    with pytest.raises(ConfigError, match="decay differs within a channel: set method.neuron_params=neuron"):
        granular(torch.tensor([[0.2, 0.3], [0.7, 0.7]]), per_channel, "decay", WHERE)
    per_layer = LearnableLIF(NeuronParams(decay=0.5))
    with pytest.raises(ConfigError, match="differs within a layer: set method.neuron_params=channel or neuron"):
        granular(torch.tensor([0.2, 0.7]), per_layer, "threshold", WHERE)


def test_channel_gain_is_one_value_per_output_channel():
    assert torch.equal(channel_gain(None, 3, 1, WHERE), torch.ones(3))
    assert torch.equal(channel_gain(torch.tensor([[[2.0]], [[4.0]]]), 2, 3, WHERE), torch.tensor([2.0, 4.0]))
    with pytest.raises(ConfigError, match="varies within a channel"):
        channel_gain(torch.tensor([1.0, 2.0]), 2, 3, WHERE)  # a [W] gain of a conv scales its columns


def test_start_learnable_sets_w_from_the_files_decay_and_undoes_its_input_scale_in_the_weights():
    """k = 1 - sigmoid(w), so w = log((1 - k) / k); the layer scales its input by 1 - k, the Linear before it is
    divided by 1 - k: (1 - k) (W / (1 - k)) x = W x, the file's current."""
    mine, linear = LearnableLIF(NeuronParams(decay=0.5)), nn.Linear(2, 3)
    linear.weight.data.fill_(1.5)
    linear.bias.data.fill_(0.3)
    with torch.no_grad():
        start_learnable(mine, LIF(decay=0.8), linear, WHERE)
    assert float(1 - torch.sigmoid(mine.w.detach())) == pytest.approx(0.8, rel=1e-6)
    assert torch.allclose(linear.weight, torch.full((3, 2), 1.5 / 0.2)) and torch.allclose(linear.bias,
                                                                                            torch.full((3,), 1.5))
