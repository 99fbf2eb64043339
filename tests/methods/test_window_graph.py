"""The walk of a windowed TTFS network (``methods.window_graph``): where its spikes cannot be relayed exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.methods.window_graph import event_stages
from deepspike.methods.window_network import WindowNetwork, calibrate_windows
from deepspike.ttfs.window_layers import WindowInput, WindowNeurons, WindowReadout


def pool_first_net() -> WindowNetwork:
    """Max pooling straight on the input, then linear -> neurons -> linear -> readout; calibrated on all-negative
    images, where the network's pooled values are negative (the first linear's -1 weights make them count)."""
    body = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 3), WindowNeurons(), nn.Linear(3, 2))
    net = WindowNetwork(WindowInput(), body, WindowReadout()).double()
    with torch.no_grad():
        body[2].weight.fill_(-1.0)
        body[2].bias.zero_()
    calibrate_windows(net, [-torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)])
    return net.eval()


def test_max_pooling_of_the_signed_input_is_refused():
    """The relay passes the earliest spike of the input's positive half, i.e. max(x, 0) of each region: on all-negative
    inputs the simulated scores were the bias-only ones (0.79 away from the network's). Now a one-line ConfigError."""
    with pytest.raises(ConfigError, match="max pooling of the signed input") as err:
        event_stages(pool_first_net(), (1, 4, 4))
    assert "\n" not in str(err.value)


def test_max_pooling_after_a_neuron_layer_is_relayed():
    body = nn.Sequential(nn.Conv2d(1, 2, 1), WindowNeurons(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2))
    net = WindowNetwork(WindowInput(), body, WindowReadout()).double()
    calibrate_windows(net, [torch.randn(4, 1, 4, 4, dtype=torch.float64)])
    stages = event_stages(net.eval(), (1, 4, 4))
    assert [type(s).__name__ for s in stages] == ["NeuronStage", "RelayStage", "NeuronStage"]
