"""The YOSO-like mesh mapping, against hand-computed numbers."""

import pytest

from deepspike.analysis.hardware import map_to_mesh, pes_for_layer
from deepspike.core.errors import ConfigError
from deepspike.models.energy import get_energy_preset
from deepspike.models.spec import Architecture, Conv, Flatten, Linear


def test_pes_per_layer():
    # C = max(ceil(n/N), ceil(w/W)): 1000/256 -> 4, 300000/65536 -> 5
    assert pes_for_layer(1000, 300_000) == 5
    assert pes_for_layer(1000, 1_000, pe_neurons=100) == 10
    with pytest.raises(ConfigError):
        pes_for_layer(10, 10, pe_neurons=0)


def test_pes_round_the_neuron_count_up():
    """zhang2021: C = max(ceil(n/N), ceil(w/W)); by hand 300 neurons at N = 256 need ceil(1.17) = 2 PEs although
    their 100 weights fit one (floor division would give 1)."""
    assert pes_for_layer(300, 100) == 2
    assert pes_for_layer(300, 100, pe_neurons=100) == 3 and pes_for_layer(301, 100, pe_neurons=100) == 4


@pytest.mark.parametrize(("bias", "pes"), [(False, 1), (True, 2)])
def test_mesh_pe_holds_256_x_256_weights_by_default(bias, pes):
    """Default W = 256 x 256 = 65,536 weights per PE: one neuron of 65,536 inputs fills one PE exactly; its bias
    makes 65,537 weights, ceil(65,537 / 65,536) = 2 PEs."""
    arch = Architecture("w", (Flatten(), Linear(1, bias=bias, act=False)), (1, 256, 256), 1)
    (layer,) = map_to_mesh(arch)["layers"]
    assert (layer["neurons"], layer["weights"], layer["pes"]) == (1, 65_536 + bias, pes)

def test_mesh_mapping_by_hand():
    arch = Architecture("t", (Conv(4, 3), Flatten(), Linear(300), Linear(10, act=False)), (1, 10, 10), 10)
    # conv: 4 x 8 x 8 = 256 neurons, 36 weights -> 1 PE; fc1: 300 neurons (ceil 300/256 = 2), 256*300 = 76800
    # weights (ceil /65536 = 2) -> 2 PEs; fc2: 10 neurons, 3000 weights -> 1 PE. Total 4 -> 2 x 2 grid.
    activity = {
        "synapses": [
            {"type": "Conv2d", "events_per_sample": 20.0},
            {"type": "Linear", "events_per_sample": 30.0},
            {"type": "Linear", "events_per_sample": 5.0},
        ],
        "macs_per_sample": 0.0,
        "acs_per_sample": 1000.0,
        "neuron_spikes_per_sample": 35.0,
    }
    hw = map_to_mesh(arch, activity, preset=get_energy_preset("45nm_int32"))
    assert [d["pes"] for d in hw["layers"]] == [1, 2, 1]
    assert hw["total_pes"] == 4 and hw["grid_side"] == 2
    assert hw["packets_per_sample"] == 20 * 1 + 30 * 2 + 5 * 1
    assert hw["energy_pj"] == pytest.approx(100.0)
    assert map_to_mesh(arch)["packets_per_sample"] is None


def _records(*pairs):
    return [{"name": f"r{i}", "type": kind, "events_per_sample": events} for i, (kind, events) in enumerate(pairs)]


def test_attention_is_one_layer_of_five_populations_and_average_pools_are_not_layers():
    """Attention on C = 8 channels at 2 x 2 tokens: 5 C L = 160 neurons, 4 C^2 = 256 weights: 1 PE. Its input
    spikes by hand: the block input 10 (query projection's record) + the product's 30 (|q| + |k| + |v|) + the
    attention neuron's 5 (output projection's record) = 45; the stbp average pool (LeanAvgPool2d) is skipped, and the
    classifier receives its 4 non-zero averages (graded packets, not the pool's 7 input spikes) on 1 PE: packets
    45 + 4."""
    from deepspike.models.spec import Attention, Pool

    arch = Architecture("a", (Attention(2), Pool("avg", 2), Flatten(), Linear(3, act=False)), (8, 2, 2), 3)
    activity = {"synapses": _records(("Conv2d", 10), ("Conv2d", 10), ("Conv2d", 10), ("AttentionProduct", 30),
                                     ("Conv2d", 5), ("LeanAvgPool2d", 7), ("Linear", 4))}
    out = map_to_mesh(arch, activity)
    attention, classifier = out["layers"]
    assert (attention["kind"], attention["neurons"], attention["weights"], attention["pes"]) == ("attention", 160,
                                                                                                 256, 1)
    assert attention["spikes_in_per_sample"] == 45 and classifier["spikes_in_per_sample"] == 4
    assert out["packets_per_sample"] == 49


def test_sdsa_holds_three_populations_and_one_neuron_per_channel():
    """SDSA on C = 8 channels at 2 x 2 tokens: 3 C L + C = 104 neurons (its output projection feeds the membrane
    shortcut: no neuron), 4 C^2 = 256 weights: 1 PE. Input spikes: the block input 10 + the column sum's 12 (|k| + |v|)
    + the masked queries 3 (output projection's record) = 25."""
    from deepspike.models.spec import Activation, Attention, Pool, Residual

    arch = Architecture("a", (Residual((Activation(), Attention(2, mixing="sdsa")), connect="add"), Pool("avg", 2),
                              Activation(), Flatten(), Linear(3, act=False)), (8, 2, 2), 3)
    activity = {"synapses": _records(("Conv2d", 10), ("Conv2d", 10), ("Conv2d", 10), ("TokenSum", 12),
                                     ("Conv2d", 3), ("LeanAvgPool2d", 7), ("Linear", 4))}
    out = map_to_mesh(arch, activity)
    attention, classifier = out["layers"]
    assert (attention["kind"], attention["neurons"], attention["weights"], attention["pes"]) == ("sdsa", 104, 256, 1)
    assert attention["spikes_in_per_sample"] == 25 and out["packets_per_sample"] == 25 + 4


@pytest.mark.parametrize("mixing", ["qk_token", "qk_channel"])
def test_qk_attention_holds_three_populations_and_its_attention_neurons(mixing):
    """Q-K attention on C = 8 channels at 2 x 2 tokens: 3 C L = 96 neurons and 8 more, a neuron per head and token
    (token mixing, 2 heads x L = 4) or per channel (channel mixing, C = 8): 104 neurons; 3 C^2 = 192 weights. Four
    synaptic records (query, key projections, the query sums, the output projection): input spikes the block input
    10 + the query sums' 6 + the masked keys 3 = 19 (the key projection's record, the same input, not again)."""
    from deepspike.models.spec import Attention, Pool, Residual

    arch = Architecture("a", (Residual((Attention(2, mixing=mixing),), connect="add"), Pool("avg", 2), Flatten(),
                              Linear(3, act=False)), (8, 2, 2), 3)
    activity = {"synapses": _records(("Conv2d", 10), ("Conv2d", 10), ("QuerySum", 6), ("Conv2d", 3),
                                     ("LeanAvgPool2d", 7), ("Linear", 4))}
    out = map_to_mesh(arch, activity)
    attention = out["layers"][0]
    assert (attention["kind"], attention["neurons"], attention["weights"]) == (mixing, 104, 192)
    assert attention["spikes_in_per_sample"] == 19 and out["packets_per_sample"] == 19 + 4


def test_a_neuronless_conv_before_a_pool_reaches_the_pooled_neurons():
    """QKFormer's patch embedding: conv (act=False) -> 3x3 stride-2 max pool -> neuron. The conv's 8 x 4 x 4 currents
    reach 8 x 2 x 2 = 32 neurons; a conv with its own neuron before a pool keeps its 8 x 4 x 4 = 128."""
    from deepspike.models.spec import Activation, Conv, Pool

    tail = (Flatten(), Linear(3, act=False))
    lone = Architecture("a", (Conv(8, 3, padding=1, norm=True, act=False), Pool("max", 3, 2, 1), Activation(), *tail),
                        (2, 4, 4), 3)
    fired = Architecture("b", (Conv(8, 3, padding=1, norm=True), Pool("max", 3, 2, 1), *tail), (2, 4, 4), 3)
    assert map_to_mesh(lone)["layers"][0]["neurons"] == 32
    assert map_to_mesh(fired)["layers"][0]["neurons"] == 128


@pytest.mark.parametrize("capacity", [{"pe_neurons": 2.5}, {"pe_weights": float("inf")}, {"pe_neurons": True},
                                      {"pe_weights": 0}])
def test_pe_capacities_must_be_whole_numbers(capacity):
    """N = 2.5 gave ceil(1000 / 2.5) = 400 PEs of two and a half neurons, and W = inf priced no weight."""
    with pytest.raises(ConfigError, match="PE capacities must be integers >= 1"):
        pes_for_layer(1000, 300_000, **capacity)


def test_a_recurrent_layer_routes_its_input_and_its_own_fed_back_spikes():
    """A recurrent linear layer keeps two synaptic records (feed-forward, then feedback); by hand: 300 recurrent
    neurons (ceil 300/256 = 2 PEs) with 100 * 300 + 300 * 300 = 120,000 weights (ceil /65,536 = 2): 2 PEs, each
    reached by the 30 input and the 12 fed-back spikes: 84 packets; the output layer's 5 input spikes, 1 PE: 5.
    Its two records were taken for a mismatch and every recurrent net had no packets (None)."""
    arch = Architecture("r", (Flatten(), Linear(300, recurrent=True), Linear(10, act=False)), (1, 10, 10), 10)
    activity = {"synapses": _records(("Linear", 30.0), ("Linear", 12.0), ("Linear", 5.0))}
    hw = map_to_mesh(arch, activity)
    assert [(d["weights"], d["pes"]) for d in hw["layers"]] == [(120_000, 2), (3_000, 1)]
    assert [d["spikes_in_per_sample"] for d in hw["layers"]] == [42.0, 5.0]
    assert hw["packets_per_sample"] == 42 * 2 + 5 * 1


def test_a_layer_after_a_neuronless_average_pool_is_routed_the_events_its_operations_are_priced_on():
    """stbp conv (1x1, weight 1, LIF threshold 0.5) -> 2x2 LeanAvgPool2d -> classifier, direct input, T = 2. By hand:
    the image's ones (a full top-left window, pixel (3, 3)) fire at both steps, its 0.25 never: 5 spikes a step in 2
    windows. The conv receives 6 non-zero pixels x 2 steps = 12 events on 1 PE; the classifier the pool's 2 non-zero
    averages x 2 steps = 4 graded packets on 1 PE (not the 10 spikes entering the pool), the 4 events its 4 x 3 = 12
    operations are counted on: packets 12 + 4 = 16 (module docstring)."""
    import torch

    from deepspike.analysis.monitor import NetworkMonitor
    from deepspike.methods import get_method
    from deepspike.models.spec import Pool

    arch = Architecture("t", (Conv(1, 1, norm=False), Pool("avg", 2), Flatten(), Linear(3, act=False)), (1, 4, 4), 3)
    net = get_method("stbp", {"timesteps": 2, "encoder": "direct"}).build(arch).eval()
    net.body[0].module.weight.data.fill_(1.0)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, :2, :2], x[0, 0, 3, 3], x[0, 0, 0, 3] = 1.0, 1.0, 0.25
    with torch.no_grad(), NetworkMonitor(net) as monitor:
        net(x)
    activity = monitor.summary()
    pool, classifier_record = activity["synapses"][1:]
    assert (pool["events_per_sample"], classifier_record["events_per_sample"]) == (10, 4)
    assert classifier_record["acs_per_sample"] + classifier_record["macs_per_sample"] == 12
    hw = map_to_mesh(arch, activity)
    conv, classifier = hw["layers"]
    assert (conv["pes"], classifier["pes"]) == (1, 1)
    assert (conv["spikes_in_per_sample"], classifier["spikes_in_per_sample"]) == (12, 4)
    assert hw["packets_per_sample"] == 16


def test_event_frame_counts_are_routed_one_packet_per_event():
    """stbp net on event frames (``FrameEncoder``), T = 2, frames [0, 2, 1] and [3, 0, 0]: a count of k is k events
    the sensor sent, k packets to each of the first layer's PEs. By hand: 2 + 1 + 3 = 6 spikes into the first layer
    (1 PE); the hidden neurons, weights 0, stay silent: packets 6. Before, one packet per non-zero entry: 3."""
    import torch

    from deepspike.analysis.monitor import NetworkMonitor
    from deepspike.methods import get_method

    arch = Architecture("f", (Flatten(), Linear(2), Linear(2, act=False)), (1, 1, 3), 2)
    net = get_method("stbp", {"timesteps": 2, "encoder": "frames"}).build(arch).eval()
    torch.nn.init.zeros_(net.body[1].module.weight)
    frames = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]).reshape(1, 2, 1, 1, 3)  # [B, T, C, H, W]
    with torch.no_grad(), NetworkMonitor(net) as monitor:
        net(frames)
    hw = map_to_mesh(arch, monitor.summary())
    assert [d["spikes_in_per_sample"] for d in hw["layers"]] == [6, 0]
    assert hw["packets_per_sample"] == 6


def test_a_neuronless_conv_ending_a_branch_keeps_its_neurons_when_the_next_branch_starts_with_a_pool():
    """Inception block: branch 0 a conv without neuron (2 -> 8 channels, 4 x 4), branch 1 a 3x3 stride-1 max pool of
    the input. The pool follows the conv in the walk but not in the conv's branch: the conv's currents reach
    8 x 4 x 4 = 128 neurons (not the pool's 2 x 4 x 4 = 32 outputs)."""
    from deepspike.models.spec import Concat, Pool

    arch = Architecture("c", (Concat(((Conv(8, 3, padding=1, act=False),), (Pool("max", 3, 1, 1),))), Flatten(),
                              Linear(3, act=False)), (2, 4, 4), 3)
    assert [d["neurons"] for d in map_to_mesh(arch)["layers"]] == [128, 3]


def test_grid_sides_round_up_and_inputs_are_the_layers_fan_in():
    """N = 200: fc1 of 1000 neurons needs ceil(1000 / 200) = 5 PEs, a ceil(sqrt 5) = 3 x 3 grid of its own; fc2 of 10
    neurons 1 PE; 6 PEs in all on a ceil(sqrt 6) = 3 x 3 grid (floor would give 2). Inputs: fc1 reads 10 values,
    fc2 fc1's 1000 outputs."""
    arch = Architecture("g", (Flatten(), Linear(1000), Linear(10, act=False)), (1, 1, 10), 10)
    hw = map_to_mesh(arch, pe_neurons=200)
    assert [(d["inputs"], d["pes"], d["grid_side"]) for d in hw["layers"]] == [(10, 5, 3), (1000, 1, 1)]
    assert (hw["total_pes"], hw["grid_side"]) == (6, 3)


def test_every_average_pools_record_is_skipped_not_only_stbps():
    """A converted net's ``AvgPool2d``, spikebp's ``SpikingAvgPool`` and a TTFS ``TTFSAvgPool2d`` keep a synaptic record
    of their own but are no mapped layer: conv (10 input spikes, 1 PE) -> pool (7 events) -> classifier (4 events,
    1 PE): packets 10 + 4. A pool's record taken for a layer's made the records mismatch (packets None)."""
    from deepspike.models.spec import Pool

    arch = Architecture("p", (Conv(2, 1), Pool("avg", 2), Flatten(), Linear(3, act=False)), (1, 4, 4), 3)
    for pool in ("AvgPool2d", "SpikingAvgPool", "TTFSAvgPool2d"):
        activity = {"synapses": _records(("Conv2d", 10), (pool, 7), ("Linear", 4))}
        assert map_to_mesh(arch, activity)["packets_per_sample"] == 14, pool
