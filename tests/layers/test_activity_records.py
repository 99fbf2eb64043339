"""Per-layer activity records: events and operations counted by hand."""

import torch
from torch import nn

from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.activity_records import SynapseRecord, is_spike_valued
from deepspike.layers.fan_out import fan_out_map
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons.chunked_if import ChunkedIF


def test_negative_spikes_are_events_that_cost_accumulates():
    """Linear(4, 3), one step of signed spikes x = [1, -1, 0, 1]: three non-zero inputs are events, each reaching
    the layer's 3 outputs, so by hand 3 events and 3 x 3 = 9 ACs (no MACs: the values are spikes)."""
    record = SynapseRecord("fc", "Linear")
    record.add_inputs(torch.tensor([[1.0, -1.0, 0.0, 1.0]]), fan_out_map(nn.Linear(4, 3), (4,)), ttfs=False)
    assert (record.events, record.acs, record.macs) == (3, 9, 0)


def test_threshold_valued_spikes_cost_accumulates():
    """Conv 1x1 (2 -> 3 channels) reading threshold-valued signed spikes, one threshold per channel (0.5 and 1.25,
    as a converted net with ``spike_value: threshold`` and per-channel norm emits): each spike's size folds into
    the weights, so by hand 4 events x 3 outputs = 12 ACs, no MACs. Averages of spikes and analog values are not
    spikes."""
    x = torch.tensor([[[[0.5, 0.0]], [[1.25, -1.25]]], [[[0.0, -0.5]], [[0.0, 0.0]]]])  # [N=2, C=2, 1, 2]
    assert is_spike_valued(x)
    record = SynapseRecord("conv", "Conv2d")
    record.add_inputs(x, fan_out_map(nn.Conv2d(2, 3, 1), (2, 1, 2)), ttfs=False)
    assert (record.events, record.acs, record.macs) == (4, 12, 0)
    # two magnitudes in one channel (an average of 1 and of 2 spikes: 0.25, 0.5) or analog pixels: not spikes (MACs)
    assert not is_spike_valued(torch.tensor([[[[0.25, 0.5]]]]))
    assert not is_spike_valued(torch.tensor([[[[0.3, 0.7], [0.0, 0.1]]]]))
    assert is_spike_valued(torch.tensor([[[[1.0, 0.0]], [[0.0, -1.0]]]])) and is_spike_valued(torch.zeros(0, 3))


def test_two_layer_conv_net_with_average_pooling_by_hand():
    """conv1 (1x1, 1 -> 2, weights 0.5 and 1.25) -> AvgPool2d(2) -> conv2 (1x1, 2 -> 3) on binary spikes
    ``[2, 1, 2, 2]`` (3 spikes in sample 0, 1 in sample 1). conv1: 4 spike events x 2 outputs = 8 ACs. The pool
    reads threshold-valued spikes (0.5 / 1.25 per channel): 8 events x 1 window = 8 ACs. conv2 reads their window
    averages (0.375, 0.9375 and 0.125, 0.3125: several values per channel): 4 events x 3 outputs = 12 MACs."""
    conv1, pool, conv2 = nn.Conv2d(1, 2, 1, bias=False), nn.AvgPool2d(2), nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv1.weight.copy_(torch.tensor([0.5, 1.25]).view(2, 1, 1, 1))
    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]], [[[0.0, 1.0], [0.0, 0.0]]]])
    net = nn.Sequential(conv1, pool, conv2)
    with torch.no_grad(), ActivityRecorder(net, codings=()) as recorder:
        net(x)
    counts = {name: (r.events, r.acs, r.macs) for name, r in recorder.synapses.items()}
    assert counts == {"0": (4, 8, 0), "1": (8, 8, 0), "2": (4, 0, 12)}


def test_a_layer_shown_analog_input_once_prices_all_its_operations_as_macs():
    """One direct-input sample over T steps repeats one row, which reads as one magnitude per feature (spikes); the
    next call, another sample, shows the input is analog, and the layer's earlier operations are repriced: by hand,
    3 non-zero inputs x fan-out 4 over 2 rows = 24 operations, then 3 non-zero entries x 4 = 12 more, all 36 MACs;
    a later binary-looking call adds 2 x 4 = 8 MACs."""
    record = SynapseRecord("fc", "Linear")
    fan = torch.full((4,), 4.0)
    image = torch.tensor([0.2, 0.0, 0.7, 0.4])
    record.add_inputs(image.repeat(2, 1), fan, ttfs=False)  # [T=2, F]: looks spike-valued
    assert (record.acs, record.macs) == (24, 0)
    record.add_inputs(torch.tensor([[0.5, 0.3, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]]), fan, ttfs=False)
    assert (record.acs, record.macs, record.analog) == (0, 36, True)
    record.add_inputs(torch.tensor([[1.0, 0.0, 1.0, 0.0]]), fan, ttfs=False)  # binary now, still this layer's MACs
    assert (record.acs, record.macs) == (0, 44)


def test_one_direct_input_sample_at_a_time_is_still_analog():
    """Batches of one image: the direct encoder repeats it over T steps, so the first layer's input shows one value
    per feature, which alone reads as spikes; the recorder knows the encoder's output is analog and prices that layer
    in MACs. The layers after the neurons receive spikes: ACs."""
    torch.manual_seed(0)
    net = get_method("stbp", {"timesteps": 4, "encoder": "direct", "threshold": 0.3}).build(
        create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8), hidden=[16])).eval()
    with torch.no_grad(), ActivityRecorder(net, codings=("rate",)) as recorder:
        for _ in range(3):
            net(torch.rand(1, 1, 8, 8))
    first, *rest = recorder.synapses.values()
    assert first.macs > 0 and first.acs == 0 and first.analog
    assert rest and all(r.macs == 0 and not r.analog for r in rest)


def test_threshold_valued_spikes_count_one_spike_each():
    """A converted net's IF layer with ``spike_value: threshold`` (``ChunkedIF(weighted=True)``, threshold 2.5, reset
    by subtraction) fed 3.0 per step for T = 4 steps: h = 3, 3.5, 4, 4.5 reaches 2.5 at every step, so by hand each
    of the 2 x 3 neurons spikes 4 times, 24 spikes, rate 1 (spikes per neuron per step), 6 at each step, however
    large the spikes' value (2.5). The record summed |s| and gave 60 spikes at a rate of 2.5."""
    net = nn.Sequential(ChunkedIF(2.5, "subtract", 0.0, weighted=True))
    with ActivityRecorder(net, codings=("rate",), operations=False) as recorder:
        s = net(torch.full((4, 2, 3), 3.0))  # [T, B, N]
    assert torch.equal(s, torch.full((4, 2, 3), 2.5))  # every step a spike carrying its threshold
    record = recorder.layers["0"]
    assert (record.spikes, record.neuron_steps, record.step_counts) == (24, 24, [6, 6, 6, 6])
    signed = nn.Sequential(ChunkedIF(2.5, "subtract", 0.5, weighted=True, signed=True))
    with ActivityRecorder(signed, codings=("rate",), operations=False) as recorder:  # v_0 = 1.25
        s = signed(torch.tensor([3.0, -5.0, 0.0, 0.0]).reshape(4, 1, 1))  # h = 4.25 (+1), -3.25 (-1), -0.75, -0.75
    assert s.flatten().tolist() == [2.5, -2.5, 0.0, 0.0]
    assert (recorder.layers["0"].spikes, recorder.layers["0"].step_counts) == (2, [1, 1, 0, 0])
