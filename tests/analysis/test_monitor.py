"""NetworkMonitor and measure_activity: hand-counted spikes, sparsity and synaptic ops on tiny nets."""

import pytest
import torch
from torch import nn

from deepspike.analysis.activity import measure_activity
from deepspike.analysis.monitor import NetworkMonitor
from deepspike.coding.encoder import InputEncoder
from deepspike.layers.readout import MembraneReadout
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods.rate_network import RateNetwork
from deepspike.neurons import IF, LIF
from fake_ttfs import FakeTTFS


class FixedSpikes(nn.Module):
    """A fake spiking layer that ignores its input and emits ``pattern`` [T, B, ...] (sliced per call)."""

    is_spiking_neuron = True

    def __init__(self, pattern):
        super().__init__()
        self.pattern, self.t0 = pattern, 0

    def forward(self, x):
        out = self.pattern[self.t0 : self.t0 + x.shape[0]]
        self.t0 = (self.t0 + x.shape[0]) % self.pattern.shape[0]
        return out


class Fixed(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x, timesteps):
        return self.value


class TinyRate(nn.Module):
    """encoder -> conv 1->2 (k=2) -> fake neurons -> flatten -> linear 8->5; optionally one step per chunk."""

    def __init__(self, inputs, spikes, chunked=False):
        super().__init__()
        self.encoder = Fixed(inputs)
        self.conv = TimeDistributed(nn.Conv2d(1, 2, 2, bias=False))
        self.neuron = FixedSpikes(spikes)
        self.fc = TimeDistributed(nn.Sequential(nn.Flatten(), nn.Linear(8, 5, bias=False)))
        self.chunked = chunked

    def forward(self, x, timesteps=None):
        s = self.encoder(x, 2)  # [T=2, B, 1, 3, 3]
        chunks = s.split(1) if self.chunked else (s,)
        return torch.cat([self.fc(self.neuron(self.conv(c))) for c in chunks]).sum(0)


def _rate_example(chunked=False, analog=False):
    inputs = torch.zeros(2, 2, 1, 3, 3)  # [T, B, C, H, W]; sample 1 stays silent
    inputs[0, 0, 0, 0, 0] = 1  # corner: in 1 window x 2 channels -> 2 ACs
    inputs[0, 0, 0, 1, 1] = 1  # centre: in 4 windows x 2 channels -> 8 ACs
    inputs[1, 0, 0, 1, 1] = 1  # centre again at t=1 -> 8 ACs
    if analog:  # two values in one channel: not spikes of one size (binary or threshold-valued)
        inputs = inputs * torch.tensor([0.5, 0.25]).view(2, 1, 1, 1, 1)
    spikes = torch.zeros(2, 2, 2, 2, 2)  # [T, B, 2, 2, 2]: 8 neurons
    spikes[0, 0, 0, 0, 0] = spikes[0, 0, 1, 1, 1] = spikes[0, 0, 0, 1, 0] = 1  # 3 spikes at t=0
    spikes[1, 0, 0, 0, 0] = 1  # the same neuron again at t=1: 4 spikes, 3 distinct neurons
    return TinyRate(inputs, spikes, chunked)


@pytest.mark.parametrize("chunked", [False, True])
def test_rate_counts_by_hand(chunked):
    model = _rate_example(chunked)
    x = torch.zeros(2, 1, 3, 3)
    with NetworkMonitor(model) as mon:
        model(x)
    s = mon.summary()
    assert s["samples"] == 2 and s["timesteps"] == 2
    assert s["input_spikes_per_sample"] == 3 / 2
    assert s["neuron_spikes_per_sample"] == 4 / 2 and s["spikes_per_sample"] == 7 / 2
    (layer,) = s["layers"]
    assert layer["neurons"] == 8
    assert layer["rate"] == 4 / (8 * 2 * 2)  # spikes / (neurons x steps x samples)
    assert layer["sparsity"] == 3 / (8 * 2)  # 3 distinct neurons fired, of 8 per sample x 2 samples
    conv, fc = s["synapses"]
    assert conv["acs_per_sample"] == (2 + 8 + 8) / 2 and conv["events_per_sample"] == 3 / 2
    assert fc["acs_per_sample"] == 4 * 5 / 2  # 4 spikes x fan-out 5
    assert s["acs_per_sample"] == 38 / 2 and s["macs_per_sample"] == 0
    assert mon.histograms()[0]["step_counts"] == [3 / 2, 1 / 2]


@pytest.mark.parametrize("chunked", [False, True])
def test_spike_recorder_agrees_on_chunked_nets(chunked):
    model = _rate_example(chunked)
    act = measure_activity(model, [(torch.zeros(2, 1, 3, 3), None)])
    (layer,) = act.layers
    assert (layer.samples, layer.steps, layer.spikes) == (2, 2, 4.0)
    assert layer.rate == 4 / (8 * 2 * 2) and act.spikes_per_sample == 2.0


def test_analog_input_counts_macs():
    model = _rate_example(analog=True)
    with NetworkMonitor(model) as mon:
        model(torch.zeros(2, 1, 3, 3))
    s = mon.summary()
    assert s["analog_input"] and s["input_spikes_per_sample"] == 0
    assert s["synapses"][0]["macs_per_sample"] == 18 / 2 and s["synapses"][0]["acs_per_sample"] == 0
    assert s["acs_per_sample"] == 20 / 2  # the linear layer still receives spikes
    assert s["macs_per_sample"] == 18 / 2 and s["synops_per_sample"] == (18 + 20) / 2  # MACs and ACs both


def test_monitor_leaves_outputs_unchanged():
    model = _rate_example()
    nn.init.normal_(model.conv.module.weight)
    x = torch.zeros(2, 1, 3, 3)
    ref = model(x)
    with NetworkMonitor(model):
        inside = model(x)
    assert torch.equal(ref, inside)
    assert not model._forward_hooks and not model.neuron._forward_hooks  # hooks removed


def test_ttfs_counts_by_hand():
    inf = float("inf")
    hidden = FakeTTFS(4, torch.tensor([[0.5, inf, 0.7], [inf, inf, inf]]))
    output = FakeTTFS(3, torch.tensor([[1.2, 0.9], [inf, inf]]))
    model = nn.Sequential(hidden, output)
    t_in = torch.tensor([[0.1, inf, 0.3, inf], [inf, 0.2, inf, inf]])
    with NetworkMonitor(model) as mon:
        model(t_in)
    s = mon.summary()
    assert s["input_spikes_per_sample"] == 3 / 2  # finite inputs of the first TTFS layer
    assert s["neuron_spikes_per_sample"] == 4 / 2 and s["spikes_per_sample"] == 7 / 2
    assert s["acs_per_sample"] == (3 * 3 + 2 * 2) / 2  # input events x fan-out 3, hidden spikes x fan-out 2
    assert s["sparsity"] == 4 / (5 * 2)
    assert s["decision_time_mean"] == pytest.approx(0.9) and s["undecided_fraction"] == 0.5
    h = {d["name"]: d for d in mon.histograms()}
    assert sorted(h["0"]["times"]) == pytest.approx([0.5, 0.7]) and h["1"]["times"] == pytest.approx(
        [1.2, 0.9]
    )


class Repeated(nn.Module):
    """``x [B, ...]`` repeated over ``timesteps`` steps into ``body``."""

    def __init__(self, body, timesteps):
        super().__init__()
        self.body, self.timesteps = body, timesteps

    def forward(self, x):
        return self.body(x.expand(self.timesteps, *x.shape))


class MyNeuron(nn.Module):
    """A neuron of one's own that does not say what its update costs."""

    is_spiking_neuron = True

    def forward(self, x):
        return (x > 0).float()


def test_neuron_updates_are_priced_per_neuron_and_step():
    """T = 3, batch 2: a LIF of 4 neurons (1 MAC + 1 AC per neuron and step) and an IF of 5 (2 ACs): per sample
    3 * 4 = 12 MACs and 3 * (4 + 2 * 5) = 42 ACs. With a neuron that does not say what its update costs, the totals
    are None (a part would read as the whole) and the layer is named."""
    torch.manual_seed(0)
    layers = [TimeDistributed(nn.Linear(3, 4)), LIF(decay=0.5), TimeDistributed(nn.Linear(4, 5)), IF()]
    for extra, expected, unpriced in (([], (12, 42), []),
                                      ([TimeDistributed(nn.Linear(5, 2)), MyNeuron()], (None, None), ["body.5"])):
        net = Repeated(nn.Sequential(*layers, *extra), timesteps=3)
        with NetworkMonitor(net) as mon:
            net(torch.rand(2, 3))
        s = mon.summary()
        assert s["samples"] == 2 and s["timesteps"] == 3
        assert (s["update_macs_per_sample"], s["update_acs_per_sample"]) == expected
        assert s["unpriced_update_layers"] == unpriced


def test_a_membrane_readout_is_priced_with_the_neuron_updates():
    """README said the output layer's membrane readout is not priced; it is (``prices_own_updates``). T = 3: an IF
    of 4 neurons (2 ACs per neuron and step) and a decay-1 membrane readout of 2 outputs (``V_t = V_{t-1} + x_t``: 1
    AC per output and step): per sample 3 * (2 * 4 + 2) = 30 ACs, no MACs; with decay 0.5 the readout's 6 updates
    are MACs (``decay V + x``)."""
    for decay, expected in ((1.0, (0, 30)), (0.5, (6, 24))):
        body = nn.Sequential(TimeDistributed(nn.Linear(3, 4)), IF(), TimeDistributed(nn.Linear(4, 2)))
        net = RateNetwork(InputEncoder("direct"), body, MembraneReadout(decay=decay), timesteps=3).eval()
        with NetworkMonitor(net) as mon:
            net(torch.rand(2, 3))
        s = mon.summary()
        assert (s["update_macs_per_sample"], s["update_acs_per_sample"]) == expected
