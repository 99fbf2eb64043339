"""NIR export of windowed TTFS nets: written, read back and replayed spike by spike from the graph alone, the
spikes and output potentials equal the closed form's (dense, conv + max pooling + batch-norm, residual)."""

import copy
import math

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_window import to_nir_window
from deepspike.deploy.nir_window_replay import replay_window_graph
from deepspike.methods import get_method
from deepspike.methods.window_network import calibrate_windows, recording

nir = pytest.importorskip("nir")

from tests.methods.test_window_graph import pool_first_net  # noqa: E402
from tests.methods.test_window_network import NETS, _converted  # noqa: E402 (random converted nets)


@pytest.mark.parametrize("net", sorted(NETS))
def test_exported_graph_replays_the_same_spikes(net, tmp_path):
    ann, snn, x, shape = _converted(*NETS[net])
    _replays_the_closed_form(snn, x, shape, tmp_path)


def test_a_dilated_conv_replays_with_its_dilation(tmp_path):
    """The first conv dilated by 2 (padding 2 keeps its 8x8 maps): the graph's Conv2d says dilation (2, 2), and the
    replay reads it (before, it ran the conv undilated: maps of another size, a RuntimeError in the simulator)."""
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    conv = next(m for m in snn.modules() if isinstance(m, torch.nn.Conv2d))
    conv.dilation, conv.padding = (2, 2), (2, 2)
    calibrate_windows(snn, [x])
    _replays_the_closed_form(snn.eval(), x, shape, tmp_path)


def test_a_grouped_conv_is_written_as_its_plain_conv_that_nir_reads(tmp_path):
    """The second conv in two groups (weight [6, 2, 3, 3]): written with groups=2 before, nir.read refused the file
    (NIR 1.0.8 takes a Conv2d's inputs as weight.shape[1]: "type mismatch: ... [[4 ...]] -> ..._conv.input: [[2
    ..."); now the block-diagonal plain conv [6, 4, 3, 3], and the replay of the file read back is the closed form's."""
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    conv = [m for m in snn.modules() if isinstance(m, torch.nn.Conv2d)][1]
    conv.groups, conv.weight = 2, torch.nn.Parameter(conv.weight.detach()[:, :2].clone())
    calibrate_windows(snn, [x])
    node = next(n for n in to_nir_window(snn.eval(), shape).nodes.values()
                if isinstance(n, nir.Conv2d) and n.weight.shape[0] == 6 and n.weight.shape[2] == 3)
    w = conv.weight.detach().float().numpy()
    assert node.groups == 1 and node.weight.shape == (6, 4, 3, 3)
    assert (node.weight[:3, :2] == w[:3]).all() and (node.weight[3:, 2:] == w[3:]).all()
    assert not node.weight[:3, 2:].any() and not node.weight[3:, :2].any()
    _replays_the_closed_form(snn, x, shape, tmp_path)


def _replays_the_closed_form(snn, x, shape, tmp_path):
    """The graph of ``snn``, written and read back, replays its output potentials and every layer's spike times."""
    graph = to_nir_window(snn, shape)
    nir.write(tmp_path / "net.nir", graph)
    result, names = replay_window_graph(nir.read(tmp_path / "net.nir"), x)
    with torch.no_grad(), recording(snn):
        scores = snn(x)
        expected_times = [(m.start + m.last_offsets).reshape(x.shape[0], -1) for m in snn.neuron_layers()]
    torch.testing.assert_close(result.potentials, scores, rtol=1e-5, atol=1e-6 * float(scores.abs().max()))
    replayed = [t for t, name in zip(result.times, names) if name.endswith("_neurons") and "output" not in name]
    assert len(replayed) == len(expected_times)
    for t_sim, expected in zip(replayed, expected_times):
        assert torch.equal(torch.isfinite(t_sim), torch.isfinite(expected))
        finite = torch.isfinite(expected)
        torch.testing.assert_close(t_sim[finite], expected[finite], rtol=1e-5, atol=1e-5)


def test_graph_metadata_says_what_nir_cannot(tmp_path):
    _, snn, _, shape = _converted(*NETS["dense"])
    graph = to_nir_window(snn, shape, metadata={"dataset": "random"})
    assert graph.metadata["format"] == "ttfs_window" and graph.metadata["dataset"] == "random"
    neurons = [n for n in graph.nodes.values() if type(n).__name__ == "CubaLIF"]
    assert len(neurons) == 2 and all("input_currents_until" in n.metadata for n in neurons)
    assert math.isclose(neurons[0].metadata["window_start"], float(snn.encoder.window))
    for node in neurons:  # the replay reads neither: NIR's own threshold alpha T_n, fire-once up to the window's end
        meta = node.metadata
        np.testing.assert_allclose(node.v_threshold, meta["alpha"] * meta["window"], rtol=1e-6)
        assert math.isclose(meta["t_window"], meta["window_start"] + meta["window"])


def test_an_uncalibrated_net_is_refused():
    from deepspike.models import create_architecture

    snn = get_method("ttfs_window", {}).build(create_architecture("zhang2021_fc400", input_shape=(1, 2, 2), width=0.01))
    with pytest.raises(ConfigError, match="not calibrated"):
        to_nir_window(snn, (1, 2, 2))


def test_max_pooling_of_the_signed_input_is_refused_in_the_export():
    """The export walks the net as the simulator does: a max pool on the signed input relayed only its positive half."""
    with pytest.raises(ConfigError, match="max pooling of the signed input"):
        to_nir_window(pool_first_net(), (1, 4, 4))


@pytest.mark.parametrize("net", ["dense", "residual_bn"])
def test_from_nir_refuses_a_windowed_ttfs_graph_naming_its_replay(net, tmp_path):
    """``from_nir`` runs rate-coded graphs; a ``ttfs_window`` graph was refused as "needs exactly one Input node, found
    6" (its bias and ramp inputs), the residual one for its Delay node, neither saying why. Now its metadata format is
    read first, from the file as from the graph."""
    from deepspike.deploy import from_nir

    _, snn, _, shape = _converted(*NETS[net])
    graph = to_nir_window(snn, shape)
    nir.write(tmp_path / "net.nir", graph)
    for source in (graph, tmp_path / "net.nir"):
        with pytest.raises(ConfigError, match=r"a TTFS graph \(metadata format 'ttfs_window'\), which from_nir does "
                                              r"not run .*nir_window_replay\.replay_window_graph$"):
            from_nir(source)


BROKEN_METADATA = {  # a hand-written graph's metadata: was a KeyError, AttributeError or ValueError traceback
    "no_clock_inputs": (lambda g: g.metadata.pop("clock_inputs"),
                        "the graph's metadata 'clock_inputs' is None, not text"),
    "clock_inputs_number": (lambda g: g.metadata.update(clock_inputs=5),
                            "the graph's metadata 'clock_inputs' is 5, not text"),
    "clock_item": (lambda g: g.metadata.update(clock_inputs="bias_1:soon"),
                   "the graph's metadata 'clock_inputs' item 'bias_1:soon' is not '<Input node>:<spike time>'"),
    "no_inputs": (lambda g: g.metadata.pop("inputs"), "the graph's metadata 'inputs' is None, not text"),
    "unknown_input": (lambda g: g.metadata.update(inputs="nope"),
                      "the graph's metadata names 'nope' as an input, but the graph has no Input node of that name"),
    "no_input_window": (lambda g: g.metadata.pop("input_window"),
                        "the graph's metadata 'input_window' is None, not a finite number"),
    "no_window_start": (lambda g: g.nodes["11_neurons"].metadata.pop("window_start"),
                        "node 11_neurons's metadata 'window_start' is None, not a finite number"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_METADATA))
def test_broken_window_metadata_is_one_config_error(case):
    _, snn, x, shape = _converted(*NETS["dense"])
    graph = to_nir_window(snn, shape)
    spoil, message = BROKEN_METADATA[case]
    spoil(graph)
    with pytest.raises(ConfigError) as e:
        replay_window_graph(graph, x)
    assert str(e.value) == f"ttfs_window replay: {message}"


@pytest.mark.parametrize("spoil, message", [
    (lambda g: g.edges.remove(("16_sumpool", "17_earliest")),  # was KeyError '17_earliest'
     "node 17_earliest (an earliest_spike_pool IF node) needs exactly one incoming edge, got 0"),
    (lambda g: g.edges.append(("15_neurons", "17_earliest")),  # was ValueError: too many values to unpack
     "node 17_earliest (an earliest_spike_pool IF node) needs exactly one incoming edge, got 2"),
    (lambda g: g.edges.remove(("15_neurons", "16_sumpool")),  # was KeyError '16_sumpool'
     "node 16_sumpool (the SumPool2d before an earliest_spike_pool IF node) needs exactly one incoming edge, got 0"),
])
def test_broken_earliest_spike_pooling_is_one_config_error(spoil, message):
    _, snn, x, shape = _converted(*NETS["conv_max_bn"])
    graph = to_nir_window(snn, shape)
    assert "17_earliest" in graph.nodes and ("15_neurons", "16_sumpool") in graph.edges  # the layout spoiled below
    spoil(graph)
    with pytest.raises(ConfigError) as e:
        replay_window_graph(graph, x)
    assert str(e.value) == f"ttfs_window replay: {message}"


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda x: x.numpy(), r"got ndarray"),  # was AttributeError: 'numpy.ndarray' object has no attribute 'to'
    (lambda x: x.to(torch.complex128), r"got \(64, 2, 8, 8\) torch.complex128"),  # ran on the real part
    (lambda x: x.reshape(64, -1)[:, :10], r"got \(64, 10\) torch.float64"),  # ran: 10 of 128 inputs, rest silent
])
def test_replay_input_that_is_no_real_tensor_of_the_graphs_shape_is_one_line(spoil, message):
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    assert shape == (2, 8, 8)
    graph = to_nir_window(snn, shape)
    with pytest.raises(ConfigError, match=r"^ttfs_window replay: x must be a real tensor \[B, 2, 8, 8\] of input "
                                          rf"values, {message}$"):
        replay_window_graph(graph, spoil(x))


def test_a_nan_replay_input_is_refused_not_read_as_no_spike():
    """NaN failed both ``x > 0`` tests and became "no spike" on either half: the replay ran and gave potentials."""
    _, snn, x, shape = _converted(*NETS["dense"])
    x[0].view(-1)[0] = float("nan")
    with pytest.raises(ConfigError, match=r"^ttfs_window replay: x holds NaN, which codes no input spike time$"):
        replay_window_graph(to_nir_window(snn, shape), x)


def test_a_partial_flatten_is_written_with_its_own_dims(tmp_path):
    """Flatten(start_dim=2) then Flatten() on [6, 2, 2] maps: the first node was written as start_dim=0 (the whole
    sample, [24]), so nir.read refused the file ("18_flatten.output: [[24]] -> 19_flatten.input: [[6 4]]"); now
    start_dim=1 (NIR counts without the batch), read back and replayed as the closed form."""
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    flat = next(i for i, m in enumerate(snn.body) if isinstance(m, torch.nn.Flatten))
    snn.body[flat] = torch.nn.Sequential(torch.nn.Flatten(start_dim=2), torch.nn.Flatten())
    calibrate_windows(snn, [x])
    nodes = [n for n in to_nir_window(snn.eval(), shape).nodes.values() if isinstance(n, nir.Flatten)]
    assert [(n.start_dim, n.end_dim) for n in nodes] == [(1, -1), (0, -1)]
    _replays_the_closed_form(snn, x, shape, tmp_path)


def test_a_partial_flatten_feeding_a_linear_replays_on_its_last_dim():
    """Flatten(start_dim=2) then Linear(4, 4) on the last dim: the replay flattened every Flatten node to [24] and
    crashed ("mat1 and mat2 shapes cannot be multiplied (1x24 and 4x4)"); now its potentials are the closed form's."""
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    flat = next(i for i, m in enumerate(snn.body) if isinstance(m, torch.nn.Flatten))
    torch.manual_seed(1)
    snn.body[flat] = torch.nn.Sequential(torch.nn.Flatten(start_dim=2), torch.nn.Linear(4, 4).double(),
                                         torch.nn.Flatten())
    calibrate_windows(snn, [x])
    result, _ = replay_window_graph(to_nir_window(snn.eval(), shape), x)
    with torch.no_grad():
        scores = snn(x)
    torch.testing.assert_close(result.potentials, scores, rtol=1e-5, atol=1e-6 * float(scores.abs().max()))


def test_a_bias_the_clock_cannot_give_is_refused():
    """The bias_<n> clock gives one bias per channel (its [C] Linear / 1x1 Conv2d), taken from the chain's offset at
    each channel's first pixel. Neurons on [6, 4] rows (Flatten(start_dim=2) -> Linear(4, 4): a bias per column) and
    a padded conv straight after a conv (the first conv's bias summed over fewer taps at the border) were written
    with that one value: replayed output potentials off by 0.060 (of 0.155) and 0.0031 (of 0.129). Now refused."""
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    flat = next(i for i, m in enumerate(snn.body) if isinstance(m, torch.nn.Flatten))
    neurons = copy.deepcopy(snn.body[flat + 2])
    snn.body[flat] = torch.nn.Sequential(torch.nn.Flatten(start_dim=2), torch.nn.Linear(4, 4).double(), neurons,
                                         torch.nn.Flatten())
    snn.body[flat + 1] = torch.nn.Linear(24, 12).double()
    calibrate_windows(snn, [x])
    with pytest.raises(ConfigError, match=r"^NIR export \(ttfs_window\): a neuron layer on \[6, 4\] populations"):
        to_nir_window(snn.eval(), shape)
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    conv = next(i for i, m in enumerate(snn.body) if isinstance(m, torch.nn.Conv2d) and i > 0)
    snn.body[conv] = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1).double(), snn.body[conv])
    calibrate_windows(snn, [x])
    with pytest.raises(ConfigError, match=r"the bias reaching a neuron layer differs within a channel's map"):
        to_nir_window(snn.eval(), shape)


@pytest.mark.parametrize("options", [dict(divisor_override=3), dict(padding=1, count_include_pad=False),
                                     dict(ceil_mode=True)])
def test_an_average_pool_nir_cannot_say_is_refused(options):
    """NIR's AvgPool2d divides by k x k, padding included, in floor mode: divisor_override=3 and a padded pool with
    count_include_pad=False were written as a plain pool, replayed potentials off by 0.0034 (of 0.137) and 0.023
    (of 0.156). Now refused in one line, as nir_export does."""
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    pool = next(i for i, m in enumerate(snn.body) if isinstance(m, torch.nn.AvgPool2d))
    snn.body[pool] = torch.nn.AvgPool2d(2, 2, **{"padding": 0, **options})
    with pytest.raises(ConfigError, match=r"^NIR export: AvgPool2d must use floor mode and the plain k x k divisor"):
        to_nir_window(snn.eval(), shape)


@pytest.mark.parametrize("options", [dict(padding=1, dilation=2), dict(ceil_mode=True)])
def test_a_max_pool_the_relay_cannot_say_is_refused(options):
    """The max-pool relay (SumPool2d -> fire-once IF) was written with the pool's kernel, stride and padding only:
    MaxPool2d(2, 2, padding=1, dilation=2) on 8 x 8 maps (4 x 4 out) became a 5 x 5 relay, and the replay ended in
    "IndexError: index 100 is out of bounds for dimension 0 with size 65". Now refused in one line."""
    _, snn, x, shape = _converted(*NETS["conv_max_bn"])
    pool = next(i for i, m in enumerate(snn.body) if isinstance(m, torch.nn.MaxPool2d))
    snn.body[pool] = torch.nn.MaxPool2d(2, 2, **options)
    with pytest.raises(ConfigError, match=r"^NIR export \(ttfs_window\): a max pooling with dilation or ceil_mode"):
        to_nir_window(snn.eval(), shape)


@pytest.mark.parametrize("options", [dict(padding=1, padding_mode="circular"), dict(padding="same")])
def test_a_conv_padding_nir_cannot_say_is_refused(options):
    """NIR's Conv2d pads with zeros by whole numbers: a circular-padded conv was written as a zero-padded one (replayed
    output potentials off by 0.011 of 0.135) and padding="same" was written as the word, on which the replay ended in
    "ValueError: invalid literal for int() with base 10: np.str_('same')". Now refused in one line, as nir_export
    does."""
    _, snn, x, shape = _converted(*NETS["conv_avg"])
    conv = [i for i, m in enumerate(snn.body) if isinstance(m, torch.nn.Conv2d)][1]
    snn.body[conv] = torch.nn.Conv2d(4, 6, 3, **options).double()
    with pytest.raises(ConfigError, match=r"^NIR export: only zero padding given as integers is supported$"):
        to_nir_window(snn.eval(), shape)


@pytest.mark.parametrize(("net", "shape", "takes"), [
    ("dense", (2, 6, 6), r"36 values \(a Linear\)"),
    ("conv_avg", (3, 8, 8), r"\[C, H, W\] maps of C = 2 channels \(a Conv2d\)"),
    ("conv_avg", (128,), r"\[C, H, W\] maps of C = 2 channels \(a Conv2d\)"),
])
def test_an_input_shape_the_net_does_not_take_is_one_line_naming_both(net, shape, takes):
    # before: torch's RuntimeError ("mat1 and mat2 shapes cannot be multiplied (1x72 and 36x20)", "Given groups=1,
    # weight of size [4, 2, 3, 3], expected input[1, 3, 8, 8] to have 2 channels ...")
    _, snn, _, _ = _converted(*NETS[net])
    given = str(list(shape)).replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(ConfigError, match=rf"^NIR export: input_shape {given} does not fit the net, whose first "
                                          rf"layer takes {takes} \([^\n]*\)$"):
        to_nir_window(snn, shape)


@pytest.mark.parametrize("shape", [64, (0, 8, 8), (1.5, 8, 8)])
def test_an_input_shape_that_is_not_sizes_is_refused_in_one_line(shape):
    _, snn, _, _ = _converted(*NETS["dense"])
    with pytest.raises(ConfigError, match=r"^to_nir_window's input_shape must be sizes of one time step"):
        to_nir_window(snn, shape)


def test_the_export_builds_no_dense_jacobian(monkeypatch):
    # before: each synapse chain's bias came from methods.window_graph.affine_map, which builds the chain's dense
    # Jacobian [M, N] (one backward pass per output) and was then dropped: a 3 x 24 x 24 input into 8 channels took
    # 14 s to export (0.02 s now), a CIFAR-sized 64-channel first conv's Jacobian alone is 1.6 GB
    def no_jacobian(*args, **kwargs):
        raise AssertionError("the exporter built a dense Jacobian")

    _, snn, _, shape = _converted(*NETS["residual_bn"])
    monkeypatch.setattr(torch.autograd.functional, "jacobian", no_jacobian)
    graph = to_nir_window(snn, shape)
    assert graph.metadata["format"] == "ttfs_window"


@pytest.mark.parametrize(("model", "shown"), [(torch.nn.Linear(3, 2), "Linear"), ("net.pt", "'net.pt'"),
                                             (None, "None")])
def test_another_model_is_refused_in_one_line(model, shown):
    # before: AttributeError "'Linear' object has no attribute 'encoder'"
    with pytest.raises(ConfigError, match=rf"^to_nir_window takes a windowed TTFS network \(method ttfs_window\), "
                                          rf"got {shown}$"):
        to_nir_window(model, (3,))
