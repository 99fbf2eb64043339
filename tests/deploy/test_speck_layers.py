"""``speck_layers``: the net as Speck layers (no Sinabs needed); what has no Speck equivalent is one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.speck import speck_layers
from deepspike.layers.readout import SpikeRateReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.rate_network import RateNetwork
from deepspike.neurons.modules import IF


def _net(*body) -> RateNetwork:
    torch.manual_seed(0)
    return RateNetwork(nn.Identity(), nn.Sequential(*body), SpikeRateReadout(IF()), 1).eval()


def test_each_layer_is_one_linear_feeding_if_neurons():
    layers = speck_layers(_net(TimeDistributed(nn.Linear(8, 6)), IF(), TimeDistributed(nn.Linear(6, 3))), (8,))
    assert [tuple(layer["conv"].weight.shape[:2]) for layer in layers] == [(6, 8), (3, 6)]


def test_two_synaptic_layers_in_a_row_are_refused_not_dropped():
    """The first of two linear layers without neurons between them was overwritten: a report of a net that fits
    without it."""
    net = _net(TimeDistributed(nn.Linear(8, 8)), TimeDistributed(nn.Linear(8, 6)), IF(),
               TimeDistributed(nn.Linear(6, 3)))
    with pytest.raises(ConfigError, match=r"^speck: layer 1 \(Linear\) follows another conv/linear layer"):
        speck_layers(net, (8,))


def test_neurons_without_reset_are_refused():
    """reset 'none' was mapped to Sinabs' subtraction."""
    net = _net(TimeDistributed(nn.Linear(8, 6)), IF(reset="none"), TimeDistributed(nn.Linear(6, 3)))
    with pytest.raises(ConfigError, match=r"has reset 'none'; Speck's neurons reset to zero or by subtraction"):
        speck_layers(net, (8,))
