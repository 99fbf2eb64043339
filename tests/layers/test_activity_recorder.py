"""The one activity recorder gives every consumer the same hand-counted numbers.

Rate net (converted, threshold 1, reset to zero, input [1, 0] at scale 1 so the first pixel spikes at
every step and the second never), T = 8: layer 1 (weights [1, 1]) receives 1 per step and fires at every
step (8 spikes); the output layer receives 0.5 and 0.25 per step and fires every 2nd and every 4th step
(4 + 2 = 6 spikes). Operations: 8 input spikes x fan-out 1 (body.1, 2 -> 1) = 8 ACs, 8 layer-1 spikes x
fan-out 2 (body.3, 1 -> 2) = 16 ACs. Largest inputs: 1 to layer 1, 0.5 to the output layer, which are also
the ANN's activation peaks (relu(1 + 0) = 1 and 0.5 * 1).
"""

import math

import pytest
import torch
from torch import nn

from deepspike.analysis.activity import measure_activity
from deepspike.analysis.monitor import NetworkMonitor
from deepspike.conversion.accuracy_sweep import sweep_accuracy
from deepspike.conversion.activation_peaks import ActivationPeaks
from deepspike.conversion.thresholds import peak_input
from deepspike.core.errors import ConfigError
from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.sew import SewBlock
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import create_model, get_method
from deepspike.methods.ttfs_measures import collect_measures
from deepspike.methods.weight_transfer import copy_ann_weights
from deepspike.methods.window_network import WindowNetwork, calibrate_windows
from deepspike.models import create_architecture
from deepspike.models.spec import Architecture, Conv, Flatten, Linear, Pool
from deepspike.neurons.modules import SpikingNeuron
from deepspike.neurons.params import NeuronParams
from deepspike.ttfs.layers import TTFSAvgPool2d
from deepspike.ttfs.window_layers import WindowInput, WindowNeurons, WindowReadout
from fake_ttfs import FakeTTFS

INF = math.inf
X = torch.tensor([[[[1.0, 0.0]]]])  # [B=1, C=1, H=1, W=2]
Y = torch.tensor([0])


def _converted(chunk_elements):
    arch = Architecture("two", (Flatten(), Linear(1), Linear(2, act=False)), (1, 1, 2), 2)
    ann = get_method("ann").build(arch)
    with torch.no_grad():
        ann[1].weight.copy_(torch.tensor([[1.0, 1.0]]))
        ann[3].weight.copy_(torch.tensor([[0.5], [0.25]]))
    options = {"timesteps": 8, "input_scale": 1.0, "chunk_elements": chunk_elements}
    snn = get_method("converted", options).build(arch)
    copy_ann_weights(ann, snn)
    return ann, snn


@pytest.mark.parametrize("chunk_elements", [2**24, 6])  # one chunk of 8 steps, or chunks of 3, 3, 2
def test_rate_consumers_get_the_hand_counts(chunk_elements):
    ann, snn = _converted(chunk_elements)
    with torch.no_grad(), NetworkMonitor(snn) as monitor:
        snn(X, 8)
    s = monitor.summary()
    assert (s["samples"], s["timesteps"], s["input_spikes_per_sample"]) == (1, 8, 8)
    assert [(d["name"], d["spikes_per_sample"], d["rate"]) for d in s["layers"]] == [
        ("body.2", 8, 1.0),
        ("output", 6, 6 / 16),
    ]
    assert [(d["name"], d["acs_per_sample"]) for d in s["synapses"]] == [("body.1.module", 8), ("body.3.module", 16)]
    assert monitor.histograms()[1]["step_counts"] == [0, 1, 0, 2, 0, 1, 0, 2]

    layers = measure_activity(snn, [(X, Y)]).layers
    assert [(a.name, a.neurons, a.spikes, a.steps, a.samples) for a in layers] == [
        ("body.2", 1, 8, 8, 1),
        ("output", 2, 6, 8, 1),
    ]

    sweep = sweep_accuracy(snn, [(X, Y)], 8, lambda line: None)
    assert sweep.spikes == {"body.2": 8, "output": 6} and sweep.accumulates == {"body.1": 8, "body.3": 16}

    assert [peak_input(snn, layer, X, 8, seed=0) for layer in (0, 1)] == [1.0, 0.5]
    peaks = ActivationPeaks()
    peaks.update(ann, X)
    assert peaks.peaks() == [1.0, 0.5]


def test_ttfs_consumers_get_the_hand_counts():
    # hidden: sample 0 fires neurons 0 and 2 (at 0.5, 0.7), sample 1 nothing; output: sample 0 decides at 0.9
    hidden = FakeTTFS(2, torch.tensor([[0.5, INF, 0.7], [INF, INF, INF]]))
    output = FakeTTFS(3, torch.tensor([[1.2, 0.9], [INF, INF]]))
    model = nn.Sequential(hidden, output)
    t_in = torch.tensor([[0.1, 0.3], [INF, 0.2]])
    with ActivityRecorder(model) as recorder:
        model(t_in)
    assert [(r.spikes, r.neurons, r.samples) for r in recorder.layers.values()] == [(2, 3, 2), (2, 2, 2)]
    assert recorder.input_spikes == 3 and recorder.decision_times == pytest.approx([0.9]) and recorder.undecided == 1
    # input events x fan-out 3, hidden spikes x fan-out 2
    assert [s.acs for s in recorder.synapses.values()] == [3 * 3, 2 * 2]

    with NetworkMonitor(model) as monitor:
        model(t_in)
    s = monitor.summary()
    assert [d["rate"] for d in s["layers"]] == [2 / 6, 2 / 4]
    assert s["decision_time_mean"] == pytest.approx(0.9) and s["undecided_fraction"] == 0.5

    m = collect_measures(model, [(t_in, None)])
    assert (m["spiking_fraction/0"], m["spiking_fraction/1"]) == (2 / 6, 2 / 4)  # = the monitor's rates
    assert m["latency"] == pytest.approx(0.9) and m["no_output_spike"] == 0.5
    assert m["hidden_before_decision"] == pytest.approx((2 / 3 + 0) / 2) and m["dead_fraction"] == pytest.approx(1 / 3)


def test_recorder_options():
    _, snn = _converted(2**24)
    with pytest.raises(ConfigError, match="bad recorder choice"):
        ActivityRecorder(snn, inputs="mean")
    recorder = ActivityRecorder(snn, outputs=False, operations=False, inputs="values", only=("output",))
    with torch.no_grad(), recorder:
        snn(X, 8)
    (record,) = recorder.layers.values()
    assert record.name == "output" and record.spikes == 0 and not recorder.synapses  # inputs only
    assert record.input_peak == 0.5 and torch.cat(record.input_values).tolist() == [0.5, 0.25] * 8
    assert not snn._forward_hooks and not snn.output._forward_pre_hooks  # hooks removed


@pytest.mark.parametrize(("frames", "events", "analog", "first_layer"), [
    (torch.tensor([[[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]]), 6.0, False, (6, 24, 0)),  # counts: a count of k is k events
    (torch.tensor([[[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]), 3.0, False, (3, 12, 0)),  # binary frames: spikes
    (torch.tensor([[[-0.5, 1.5, 0.2], [0.1, 0.0, 0.3]]]), 0.0, True, (5, 0, 20)),  # normalised frames: analog
])
def test_event_frames_of_counts_are_input_events_not_spike_times(frames, events, analog, first_layer):
    """A sequence batch ``[B, T, F]`` through the frames encoder is not TTFS input (whose same-rank, non-negative
    times count one spike per finite entry): counts add up to events, a count of k being k spikes. Hand count of the
    first layer (3 -> 4, fan-out 4): counts 2 + 1 + 3 = 6 events, 6 x 4 = 24 ACs; binary 3 events, 12 ACs; normalised
    5 non-zero entries, 20 MACs. The counts' first layer counted 3 events (one per non-zero entry) and 12 MACs, one
    event short of the input's 6 per multi-event entry (and the mesh's packets with it)."""
    net = create_model("rsnn", method="stbp", num_classes=2, input_shape=(3,), model_args={"hidden": [4]},
                       timesteps=2, encoder="frames").eval()
    recorder = ActivityRecorder(net, codings=("rate",), operations=True)
    with recorder, torch.no_grad():
        net(frames)
    assert recorder.input_spikes == events and recorder.analog_input is analog
    first = recorder.synapses["body.0.feedforward.module"]
    assert (first.events, first.acs, first.macs) == first_layer


class _CodedInputNet(nn.Module):
    """A net taking its input already coded in time, as an imported NIR net (``takes_coded_input``): x [T, B, 2]."""

    takes_coded_input = True

    def __init__(self) -> None:
        super().__init__()
        linear = nn.Linear(2, 3, bias=False)
        nn.init.ones_(linear.weight)
        self.body = nn.Sequential(TimeDistributed(linear), SpikingNeuron(NeuronParams(decay=1.0, threshold=1.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_a_net_taking_coded_input_counts_its_samples_on_axis_one():
    """x [T=6, B=2, 2] of ones: each of the 3 IF neurons receives 2 >= 1 and fires at every step, 18 spikes per
    sample, 36 ACs per sample (12 input events x fan-out 3; no encoder, so no input spikes). The recorder counted
    T = 6 samples (axis 0): every per-sample figure of an imported NIR net was divided by T instead of B (6 spikes
    per sample here)."""
    model = _CodedInputNet()
    with torch.no_grad(), NetworkMonitor(model) as monitor:
        model(torch.ones(6, 2, 2))
    s = monitor.summary()
    assert (s["samples"], s["timesteps"], s["neuron_spikes_per_sample"]) == (2, 6, 18)
    assert (s["input_spikes_per_sample"], s["acs_per_sample"]) == (0, 36)


def test_a_windowed_nets_average_pool_folds_into_the_next_layers_synapses():
    """A windowed TTFS net has no neuron at an average pool (``methods.window_network``: the pool is part of the next
    layer's synapses), so each spike entering the pool reaches the next layer's outputs itself. Hand count: the 4
    hidden neurons of a 2x2 map all fire (weight 1, every pixel 1), the 2x2 pool has one window and the linear layer
    3 outputs: 4 spikes x 3 = 12 ACs, none at the pool. Before, the pooled value counted as one spike: 4 pool ACs +
    1 x 3 = 7, and the routed spikes into the linear layer were 1."""
    body = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), WindowNeurons(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(1, 3, bias=False))
    net = WindowNetwork(WindowInput(), body, WindowReadout()).double()
    with torch.no_grad():
        body[0].weight.fill_(1.0)
        body[4].weight.fill_(1.0)
    x = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    calibrate_windows(net, [x])
    with torch.no_grad(), NetworkMonitor(net.eval()) as monitor:
        net(x)
    rows = {s["name"]: s for s in monitor.summary()["synapses"]}
    assert monitor.layers["body.1"].spikes == 4
    assert (rows["body.2"]["events_per_sample"], rows["body.2"]["acs_per_sample"]) == (4, 0)
    assert (rows["body.4"]["events_per_sample"], rows["body.4"]["acs_per_sample"]) == (4, 12)
    assert rows["body.4"]["macs_per_sample"] == 0


def test_a_ttfs_average_pools_neurons_are_counted_as_spiking_neurons():
    """zhou2021's average pool is a TTFS neuron per window (``TTFSAvgPool2d``), as spikebp's pool has its own IF neuron
    (``SpikingAvgPool``, counted): its spikes are neuron spikes. Hand count: input times [2, 1, 2, 4] -> 2x2 pool
    windows; sample 0 has every input finite (2 pool spikes), sample 1 one silent input in the left window (1 pool
    spike; a silent input silences its window). The output layer fires 1 + 0. Before, the monitor counted the output
    layer's spike only (neuron spikes 0.5 per sample, not 2)."""
    t_in = torch.tensor([[[[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]],
                         [[[INF, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]]])
    pool = TTFSAvgPool2d(2)
    model = nn.Sequential(pool, nn.Flatten(), FakeTTFS(2, torch.tensor([[0.9], [INF]])))
    pooled = pool(t_in)
    assert torch.isfinite(pooled).sum() == 3  # the plain count the monitor must give
    with torch.no_grad(), NetworkMonitor(model) as monitor:
        model(t_in)
    s = monitor.summary()
    assert [(d["name"], d["coding"], d["spikes_per_sample"]) for d in s["layers"]] == [("0", "ttfs", 1.5),
                                                                                      ("2", "ttfs", 0.5)]
    assert s["neuron_spikes_per_sample"] == 2 and s["input_spikes_per_sample"] == 7.5
    assert s["decision_time_mean"] == pytest.approx(0.9)
    assert set(collect_measures(model, [(t_in, None)])) == {"latency", "no_output_spike", "spiking_fraction",
                                                             "spiking_fraction/2"}  # TTFS measures: unchanged


def test_analog_population_coding_of_a_sequence_is_analog_input_not_spike_times():
    """Population coding without spikes (``population_spikes`` false) turns a sequence ``[B, T, F]`` into Gaussian
    receptive-field values ``[T, B, F P]`` in (0, 1]: analog input, as the layer receiving it is priced (MACs). Its
    output has the input's rank and no negative value, which the recorder took for a TTFS encoder's times ``[B, ...]``:
    every finite value (2 steps x 3 features x 8 neurons = 48) was an input spike and ``analog_input`` False."""
    net = create_model("rsnn", method="stbp", num_classes=2, input_shape=(3,), model_args={"hidden": [4]},
                       timesteps=2, encoder="population").eval()
    frames = torch.tensor([[[0.1, 0.5, 0.9], [0.3, 0.0, 0.7]]])  # [B=1, T=2, F=3]
    with torch.no_grad(), NetworkMonitor(net) as monitor:
        net(frames)
    s = monitor.summary()
    assert (s["input_spikes_per_sample"], s["analog_input"]) == (0.0, True)
    first = monitor.synapses["body.0.feedforward.module"]
    assert first.events == 48 and first.acs == 0 and first.macs == 48 * 4


@pytest.mark.parametrize(("method", "options", "readout_ops"), [
    ("stbp", {"readout": "membrane"}, (0, 1)),  # V_T = sum_t x_t: an addition per output and step
    ("stbp", {"readout": "max_membrane", "readout_decay": 0.9}, (1, 1)),  # V_t = 0.9 V_{t-1} + x_t, and the max
    ("spikebp", {}, (1, 0)),  # lee2020's integrator, V_t = 0.99 V_{t-1} + x_t
])
def test_a_non_spiking_output_integrators_updates_are_priced(method, options, readout_ops):
    """The output neurons of a membrane readout integrate at every step as a rate readout's LIF neurons do (priced,
    (1, 1) each); their updates were left out of the neurons' updates (SNN + updates). Hand count, 2 samples, T = 3:
    4 hidden neurons of (1, 1) -> 2 x 3 x 4 = 24 MACs and 24 ACs, plus 2 x 3 x 3 outputs x the readout's ops."""
    net = create_model("mlp", method=method, num_classes=3, input_shape=(1, 2, 2), model_args={"hidden": [4]},
                       timesteps=3, **options).eval()
    with torch.no_grad(), NetworkMonitor(net) as monitor:
        net(torch.rand(2, 1, 2, 2))
    s = monitor.summary()
    hidden = 3 * 4  # per sample: T x hidden neurons, (1, 1) each
    assert (s["update_macs_per_sample"], s["update_acs_per_sample"]) == (hidden + 9 * readout_ops[0],
                                                                         hidden + 9 * readout_ops[1])


class _KeywordNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_a_model_called_with_its_input_as_a_keyword_is_recorded():
    """``model(x=...)`` gave an IndexError in the recorder's pre-hook (it read ``args[0]``); the keyword's tensor is
    the input now (4 samples, 4 x 3 events x fan-out 2 = 24 operations), and an input that is no tensor is one line."""
    model = _KeywordNet()
    with ActivityRecorder(model) as recorder:
        model(x=torch.ones(4, 3))
    assert recorder.samples == 4 and recorder.synapses["fc"].operations == 24
    with ActivityRecorder(model), pytest.raises(ConfigError, match=r"^the activity recorder needs _KeywordNet's input"):
        model([1.0, 2.0, 3.0])


def test_a_layer_after_an_average_pool_without_neurons_is_priced_in_macs():
    """stbp: 1x1 conv (weight 1) -> LIF -> 2x2 average pool -> Flatten -> Linear(3) on a 2x4 image whose left 2x2
    block is 1 and one pixel of the right block: per step 4 + 1 neurons fire (input 1 >= threshold 0.5), the pool
    gives the features 1.0 and 0.25 every step, each one value, so they passed as spikes and the Linear's
    2 events x 3 outputs x 4 steps = 24 operations were ACs. They are averages of spikes: 24 MACs; the pool's own
    5 x 4 = 20 spikes stay ACs."""
    arch = Architecture("t", (Conv(1, 1), Pool("avg", 2), Flatten(), Linear(3, act=False)), (1, 2, 4), 3)
    net = get_method("stbp", {"timesteps": 4}).build(arch).eval()
    x = torch.zeros(1, 1, 2, 4)
    x[0, 0, :, :2] = x[0, 0, 0, 2] = 1.0
    with torch.no_grad():
        net.body[0].module.weight.fill_(1.0)
        with ActivityRecorder(net) as recorder:
            net(x)
    pool, linear = recorder.synapses["body.2.module"], recorder.synapses["body.4.module"]
    assert recorder.layers["body.1"].spikes == 20 and (pool.events, pool.acs, pool.macs) == (20, 20, 0)
    assert (linear.events, linear.acs, linear.macs) == (8, 0, 24)


class _PoolBranch(nn.Module):
    """A 2x2 average pool on one branch, and a Linear reading the spikes beside it after the pool ran."""

    def __init__(self) -> None:
        super().__init__()
        self.pool, self.spikes_fc, self.pooled_fc = nn.AvgPool2d(2), nn.Linear(4, 2), nn.Linear(1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x)  # [B, 1, 1, 1]
        return self.spikes_fc(x.flatten(1)).sum(1) + self.pooled_fc(pooled.flatten(1)).sum(1)


def test_only_the_layer_reading_a_pools_output_is_priced_as_averages():
    """Spikes [[1, 0], [1, 0]]: the pool's output 0.5 reaches pooled_fc (1 event x 3 outputs = 3 MACs, one value
    that looked like a spike); spikes_fc, run after the pool but on the spikes, keeps its 2 x 2 = 4 ACs."""
    model = _PoolBranch()
    with torch.no_grad(), ActivityRecorder(model) as recorder:
        model(torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]]))
    spikes_fc, pooled_fc = recorder.synapses["spikes_fc"], recorder.synapses["pooled_fc"]
    assert (spikes_fc.events, spikes_fc.acs, spikes_fc.macs) == (2, 4, 0)
    assert (pooled_fc.events, pooled_fc.acs, pooled_fc.macs) == (1, 0, 3)


class _Roll(nn.Module):
    """A body emitting the input spikes shifted by one feature."""

    def forward(self, x):
        return x.roll(1, -1)


def test_a_sew_add_junctions_sums_are_graded_values_one_event_each():
    """SEW ``add`` sums {0, 1, 2} are one graded value per entry (``activity_records``' docstring): the Linear after
    the junction counts one event per non-zero sum and prices MACs. Hand count: spikes [[1, 1, 0], [1, 0, 0]] plus
    their roll [[0, 1, 1], [0, 1, 0]] = sums [[1, 2, 1], [1, 1, 0]]: 5 events x fan-out 2 = 10 MACs (6 spikes)."""
    net = nn.Sequential(SewBlock(_Roll(), nn.Sequential(), "add"), nn.Linear(3, 2))
    with ActivityRecorder(net) as recorder, torch.no_grad():
        net(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    linear = recorder.synapses["1"]
    assert (linear.events, linear.acs, linear.macs) == (5, 0, 10)


@pytest.mark.parametrize("delay, events", [(0, 18), (1, 9)])
def test_multi_spike_counts_are_spikes_and_events_of_acs(delay, events):
    """``method.max_spikes: 3`` (``neurons.multi_spike``): a hidden count of ``k`` is ``k`` spikes, and the layer it
    feeds receives ``k`` events of ``F_j`` ACs (it counted one event per non-zero count, priced in MACs: 8 events, 24
    MACs). By hand, threshold 0.5, currents c = (0, 0.6, 1.1, 1.6, 2.2) at both steps (direct input of ones): counts
    (0, 1, 2, 3, 3) each step (the leftover membrane <= 0.7 x decay changes none), 9 a step, 18 in all; fan-out 3.
    Through ``spike_delay: 1`` the next layer reads step 0's counts at step 1: 9 events (the delay's new tensor was read
    as one event per non-zero count: 4 events, 12 operations)."""
    arch = create_architecture("mlp", num_classes=3, input_shape=(4,), hidden=[5], spike_delay=delay)
    net = get_method("stbp", {"timesteps": 2, "reset": "subtract", "threshold": 0.5, "max_spikes": 3,
                              "encoder": "direct"}).build(arch)
    hidden, out = [m for m in net.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([0.0, 0.6, 1.1, 1.6, 2.2]).unsqueeze(1).expand(5, 4) / 4)
        out.weight.fill_(0.1)
    with ActivityRecorder(net) as rec:
        net(torch.ones(1, 4))
    names = {m: n for n, m in net.named_modules()}
    record = rec.synapses[names[out]]
    assert (record.events, record.acs, record.macs) == (events, 3 * events, 0)
    layer = next(r for r in rec.layers.values() if r.neurons == 5)
    assert (layer.spikes, layer.neuron_steps, layer.step_counts) == (18, 10, [9, 9])  # rate 1.8 spikes a step


def test_multi_spike_counts_through_a_max_pool_stay_counts():
    """A max pool of a multi-spike layer's counts passes each window's largest count, ``k`` spikes: the next layer
    receives ``sum max_window n`` events of 3 ACs each (Linear(3)); it read the pool's new tensor as one event per
    non-zero count, priced in MACs (before: 40 events, 120 MACs here)."""
    torch.manual_seed(0)
    arch = Architecture("c", input_shape=(1, 4, 4), num_classes=3,
                        layers=[Conv(2, 3, padding=1), Pool("max", 2), Flatten(), Linear(3)])
    net = get_method("stbp", {"timesteps": 2, "reset": "subtract", "max_spikes": 3}).build(arch)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(6)
    conv, linear = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hidden = next(m for m in net.modules() if getattr(m, "max_spikes", 1) == 3)
    seen = []
    hidden.register_forward_hook(lambda m, a, out: seen.append(out.detach()))
    with ActivityRecorder(net) as rec:
        net(torch.rand(3, 1, 4, 4))
    pooled = nn.functional.max_pool2d(seen[0].flatten(0, 1), 2)  # [T B, C, 2, 2] counts
    assert float(pooled.max()) > 1  # counts above one reach the layer
    record = rec.synapses[{m: n for n, m in net.named_modules()}[linear]]
    assert (record.events, record.acs, record.macs) == (float(pooled.sum()), 3 * float(pooled.sum()), 0)
