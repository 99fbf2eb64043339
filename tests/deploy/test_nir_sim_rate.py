"""GraphSimulator on deepspike's rate-coded NIR files and its neuron rules, against independent references.

* ``GraphSimulator.rate_coded`` (forward Euler, inputs as currents held over a step, the file's dt) gives the
  output spikes of ``from_nir`` (deepspike's own neurons) and of the PyTorch net, spike for spike: stbp LIF nets
  (Poisson spikes in, folded or not, two dt), converted IF nets (direct real-valued input, both resets), and a
  file written by ``deepspike export`` from a trained run.
* ``reset`` / ``fires`` node metadata, by hand on one IF neuron (inputs chosen so that the four rules differ).
* ``integration`` on a non-spiking LI node fed a constant current, against the closed forms of both schemes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.training.reload import load_run

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, export_run, from_nir, to_nir, write_nir  # noqa: E402
from deploy.nir_files import word_padded_conv  # noqa: E402


def _spikes(seed: int, shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < 0.5).float()


def _round_trip(model, tmp_path, **options):
    """The graph read back from the file ``to_nir`` wrote, and ``from_nir`` of that file."""
    path = write_nir(to_nir(model, (1, 8, 8), **options), tmp_path / "m.nir")
    return nir.read(str(path)), from_nir(path)


def _simulate(graph, x: torch.Tensor) -> torch.Tensor:
    return GraphSimulator.rate_coded(graph).run({"input": x})["output"].float()


@pytest.mark.parametrize(("dt", "fold"), [(1e-4, False), (1e-4, True), (1.0, False)])
def test_stbp_lif_file_gives_from_nirs_spikes(tmp_path, dt, fold):
    torch.manual_seed(1)
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8), width=1.0)
    model = get_method("stbp", {"timesteps": 6, "encoder": "poisson"}).build(arch).eval()
    graph, net = _round_trip(model, tmp_path, dt=dt, fold_thresholds=fold)
    assert any(isinstance(n, nir.LIF) for n in graph.nodes.values())
    x = _spikes(0, (6, 5, 1, 8, 8))  # the encoded input [T, B, C, H, W]
    with torch.no_grad():
        ours, theirs = model.readout.neuron(model.body(x)), net(x)
    sim = _simulate(graph, x)
    assert ours.sum() > 0 and torch.equal(theirs, ours)
    assert torch.equal(sim, theirs)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_converted_if_file_gives_from_nirs_spikes_on_real_valued_input(tmp_path, reset):
    torch.manual_seed(2)
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8), width=1.0)
    options = {"timesteps": 16, "reset": reset, "encoding": "direct", "thresholds": [0.3, 0.3, 0.2, 0.05]}
    model = get_method("converted", options).build(arch).eval()
    graph, net = _round_trip(model, tmp_path)
    assert {n.metadata["reset"] for n in graph.nodes.values() if isinstance(n, nir.IF)} == {reset}
    image = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    x = image.unsqueeze(0).expand(16, *image.shape).contiguous()  # direct coding: the image every step
    with torch.no_grad():
        theirs = net(x)
    sim = _simulate(graph, x)
    assert theirs.sum() > 0 and theirs.sum() < theirs.numel()
    assert torch.equal(sim, theirs)


def test_exported_run_file_gives_from_nirs_spikes_and_the_runs_output(tiny_run, tmp_path):
    path = tmp_path / "run.nir"
    export_run(tiny_run, path)
    graph = nir.read(str(path))
    _, parts, _ = load_run(tiny_run, device="cpu")
    model = parts.model.eval()
    steps = int(graph.metadata["timesteps"])
    image = torch.rand(6, *parts.arch.input_shape, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(5)
    with torch.no_grad():
        x = model.encoder(image, steps)  # [T, B, ...] exactly what the net sees
        ours = model.readout.neuron(model.body(x))
        theirs = from_nir(path)(x)
    assert ours.sum() > 0 and torch.equal(theirs, ours)
    assert torch.equal(_simulate(graph, x), theirs)


def _one_if(metadata: dict) -> nir.NIRGraph:
    """Input -> IF (r = 1/dt, threshold 1) -> Output, dt = 0.5: with currents a step adds ``r dt x = x``."""
    one = np.ones(1, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
             "if": nir.IF(r=one / 0.5, v_threshold=one, v_reset=0 * one, metadata=metadata),
             "output": nir.Output(output_type={"output": np.array([1])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "if"), ("if", "output")], type_check=False)


@pytest.mark.parametrize(("metadata", "expected"), [
    # h = v + x by hand, x = 0.5, 0.5, 0.75, 0.75, 0.5:
    ({}, [0, 0, 1, 0, 1]),  # NIR: h = .5, 1 (not > 1), 1.75 fire -> 0, .75, 1.25 fire
    ({"reset": "subtract"}, [0, 0, 1, 1, 0]),  # .5, 1, 1.75 fire -> .75, 1.5 fire -> .5, 1
    ({"fires": "v >= threshold"}, [0, 1, 0, 1, 0]),  # .5, 1 fire -> 0, .75, 1.5 fire -> 0, .5
    ({"fires": "v >= threshold", "reset": "subtract"}, [0, 1, 0, 1, 1]),  # .5, 1 -> 0, .75, 1.5 -> .5, 1 fire
])
def test_reset_and_firing_rule_come_from_the_node_metadata(metadata, expected):
    x = torch.tensor([0.5, 0.5, 0.75, 0.75, 0.5], dtype=torch.float64).reshape(5, 1, 1)  # [T, B, 1]
    areas = GraphSimulator(_one_if(metadata), 0.5).run({"input": x * 0.5})["output"]  # area = current * dt
    assert areas.reshape(-1).tolist() == expected
    for integration in ("euler", "exact"):  # IF: no leak, both schemes are the same
        sim = GraphSimulator(_one_if(metadata), 0.5, integration=integration, signals="currents")
        assert sim.run({"input": x})["output"].reshape(-1).tolist() == expected


def test_integration_schemes_against_the_closed_forms_for_a_held_current():
    """LI ``tau v' = -v + r I`` with I = 2 held: exact ``v(t) = r I (1 - e^{-t/tau})``, Euler
    ``v_k = r I (1 - (1 - dt/tau)^k)``; dt = 0.25, tau = 1, r = 3, after k = 1..6 steps."""
    one = np.ones(1, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
             "li": nir.LI(tau=one, r=3 * one, v_leak=0 * one),
             "output": nir.Output(output_type={"output": np.array([1])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "li"), ("li", "output")], type_check=False)
    x = torch.full((6, 1, 1), 2.0, dtype=torch.float64)
    k = np.arange(1, 7)
    exact = GraphSimulator(graph, 0.25, signals="currents").run({"input": x})["output"].reshape(-1).numpy()
    euler = GraphSimulator(graph, 0.25, "euler", "currents").run({"input": x})["output"].reshape(-1).numpy()
    np.testing.assert_allclose(exact, 6 * (1 - np.exp(-0.25 * k)), rtol=1e-12)
    np.testing.assert_allclose(euler, 6 * (1 - 0.75 ** k), rtol=1e-12)


@pytest.mark.parametrize(("dt", "metadata", "origin"), [
    (None, {"dt": "soon"}, "the graph's metadata"),  # was a bare ValueError from float('soon')
    ("soon", {}, "the dt argument"),  # was a TypeError from math.isfinite
    (-1.0, {}, "the dt argument"),
])
def test_a_step_that_is_not_a_positive_number_is_one_line(dt, metadata, origin):
    graph = _one_if({})
    graph.metadata = metadata
    message = rf"^NIR simulation: dt = .* is not a positive number of seconds \({origin}\)$"
    with pytest.raises(ConfigError, match=message):
        GraphSimulator.rate_coded(graph, dt=dt)
    if dt is not None:
        with pytest.raises(ConfigError, match=message):
            GraphSimulator(graph, dt)


@pytest.mark.parametrize("rate", [0.5, 0.01])  # dense x @ W^T, and the sparse embedding_bag path (< 5% nonzero)
def test_an_affine_node_on_values_of_several_axes_acts_on_the_last_as_from_nir(rate):
    # nir_shapes and from_nir (nn.Linear) take an Affine [5, 4] on [2, 3, 4] values, giving [2, 3, 5]; GraphSimulator
    # (and so `deepspike export FILE --onnx`'s check) ended in "ValueError: too many values to unpack (expected 2)"
    rng, ones = np.random.default_rng(0), np.ones((2, 3, 5), dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 3, 4])}),
             "fc": nir.Affine(weight=rng.normal(size=(5, 4)).astype(np.float32), bias=np.full(5, 0.3, np.float32)),
             "if": nir.IF(r=ones * 1e3, v_threshold=ones, v_reset=0 * ones),
             "output": nir.Output(output_type={"output": np.array([2, 3, 5])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "if"), ("if", "output")],
                         metadata={"dt": 1e-3}, type_check=False)
    x = (torch.rand(6, 2, 2, 3, 4, generator=torch.Generator().manual_seed(1)) < rate).float()
    with torch.no_grad():
        ours = from_nir(graph)(x)
    assert ours.shape == (6, 2, 2, 3, 5) and ours.any()
    assert torch.equal(GraphSimulator.rate_coded(graph).run({"input": x})["output"].float(), ours)


@pytest.mark.parametrize("graph", ["model.nir", None])
def test_a_graph_that_is_not_a_nir_graph_is_one_line(graph):
    # a file's path ended in AttributeError "'str' object has no attribute 'nodes'" (GraphSimulator) / "... no
    # attribute 'metadata'" (rate_coded, nir_to_onnx, ttfs_graph_times)
    from deepspike.deploy import nir_to_onnx, ttfs_graph_times

    runs = {"GraphSimulator": lambda: GraphSimulator(graph, 1e-3),
            "GraphSimulator.rate_coded": lambda: GraphSimulator.rate_coded(graph),
            "nir_to_onnx": lambda: nir_to_onnx(graph),
            "ttfs_graph_times": lambda: ttfs_graph_times(graph, torch.zeros(1, 2), 1e-3, 1.0)}
    for who, run in runs.items():
        with pytest.raises(ConfigError) as error:
            run()
        assert str(error.value) == (f"{who} takes a nir.NIRGraph (a NIR file: read it with deepspike.deploy.read_nir),"
                                    f" got {graph!r}")


def test_bad_choices_and_cuba_outside_its_scheme_are_one_line_errors():
    graph = _one_if({})
    with pytest.raises(ConfigError, match=r"^NIR simulation: integration must be 'exact' or 'euler', got 'rk4'$"):
        GraphSimulator(graph, 0.5, integration="rk4")
    with pytest.raises(ConfigError, match=r"^NIR simulation: signals must be 'areas' or 'currents', got 'spikes'$"):
        GraphSimulator(graph, 0.5, signals="spikes")
    with pytest.raises(ConfigError, match="unknown reset 'half'"):
        GraphSimulator(_one_if({"reset": "half"}), 0.5)
    one = np.ones(1, dtype=np.float32)
    lif = nir.LIF(tau=one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1])}), "lif": lif,
                            "output": nir.Output(output_type={"output": np.array([1])})},
                     edges=[("input", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(ConfigError, match=r"forward Euler needs dt <= tau"):
        GraphSimulator(g, 2.0, integration="euler")
    assert math.isclose(GraphSimulator.rate_coded(g, dt=0.5).dt, 0.5)


def _linear_if() -> nir.NIRGraph:
    """Input [3] -> Linear [2, 3] -> IF (r = 1/dt, dt = 0.5) -> Output."""
    one = np.ones(2, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "w": nir.Linear(weight=np.ones((2, 3), dtype=np.float32)),
             "if": nir.IF(r=one / 0.5, v_threshold=one, v_reset=0 * one),
             "output": nir.Output(output_type={"output": np.array([2])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "w"), ("w", "if"), ("if", "output")], metadata={"dt": 0.5},
                        type_check=False)


@pytest.mark.parametrize(("x", "message"), [
    (torch.zeros(5, 2, 4), r"Input node 'input' takes a tensor \[Tc, B, 3\], got \(5, 2, 4\)"),  # zeros out, before
    (torch.ones(5, 2, 4), r"Input node 'input' takes a tensor \[Tc, B, 3\], got \(5, 2, 4\)"),  # an IndexError
    (torch.ones(5, 3), r"Input node 'input' takes a tensor \[Tc, B, 3\], got \(5, 3\)"),  # a ValueError
    (np.ones((5, 2, 3)), r"Input node 'input' takes a tensor \[Tc, B, 3\], got ndarray"),  # an AttributeError
    (torch.ones(0, 2, 3), r"the inputs' \[Tc, B\] must be one and the same with Tc >= 1, got \[\(0, 2\)\]"),
    (torch.ones(5, 2, 3, dtype=torch.complex64), r"Input node 'input' takes real numbers, got a torch.complex64 "
                                                 r"tensor"),  # its imaginary part dropped
])
def test_inputs_of_the_wrong_shape_are_one_line_errors(x, message):
    sim = GraphSimulator.rate_coded(_linear_if())
    with pytest.raises(ConfigError, match=rf"^NIR simulation: {message}$"):
        sim.run({"input": x})


def test_a_chunk_of_another_batch_size_needs_a_reset_first():
    """The states kept between chunks are per sample: a second chunk of another B is refused until ``reset()``
    (before, a RuntimeError from inside torch), and after it the run is that of a fresh simulator."""
    sim = GraphSimulator.rate_coded(_linear_if())
    sim.run({"input": torch.ones(2, 3, 3)})
    with pytest.raises(ConfigError, match=r"the states kept since reset\(\) are for B = 3$"):
        sim.run({"input": torch.ones(2, 1, 3)})
    sim.reset()
    x = torch.tensor([0.2, 0.1, 0.4]).repeat(4, 1, 1)  # h = v + 0.7 per step: spikes at steps 1 and 3
    assert sim.run({"input": x})["output"][:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_data_for_a_name_that_is_no_input_node_is_a_one_line_error():
    """A misspelt input name beside the right one was ignored (the run went on, the extra tensor unused); now it is
    refused, naming it and the graph's inputs."""
    sim = GraphSimulator.rate_coded(_linear_if())
    with pytest.raises(ConfigError, match=r"^NIR simulation: data for \['inptu'\], which are not Input nodes; "
                                          r"inputs are \['input'\]$"):
        sim.run({"input": torch.ones(2, 1, 3), "inptu": torch.ones(2, 1, 3)})
    assert sim.run({"input": torch.ones(2, 1, 3)})["output"].shape == (2, 1, 2)


@pytest.mark.parametrize("padding, kernel, dilation", [("same", (3, 5), (1, 1)), ("same", (3, 3), (2, 1)),
                                                       ("valid", (3, 5), (1, 1))])
def test_a_conv_padded_by_a_word_simulates_as_torchs_own_padding(padding, kernel, dilation):
    """GraphSimulator refused padding "same" / "valid" ('string padding ... is not supported'); float64, it now
    gives torch's ``F.conv2d(padding=word)`` exactly."""
    graph, weight, bias = word_padded_conv(padding, kernel, dilation)
    x = torch.rand(3, 2, 1, 6, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = F.conv2d(x.flatten(0, 1), torch.tensor(weight), torch.tensor(bias), padding=padding, dilation=dilation)
    got = GraphSimulator.rate_coded(graph).run({"input": x})["output"]
    assert torch.equal(got.flatten(0, 1), expected)


@pytest.mark.parametrize("kernel, stride", [((2, 3), (1, 1)), ((3, 3), (2, 2))])
def test_a_same_padding_that_is_not_whole_and_symmetric_is_refused_in_one_line(kernel, stride):
    graph, _, _ = word_padded_conv("same", kernel, stride=stride)
    with pytest.raises(DataCorruptError, match="^NIR simulation: node 'conv': padding 'same' (of a 2x3 kernel|at "
                                               "stride \\[2, 2\\])"):
        GraphSimulator.rate_coded(graph)


def test_forward_euler_runs_a_lif_whose_tau_is_dt_as_one_without_memory():
    """tau = dt is forward Euler's shortest time constant: decay 1 - dt/tau = 0, so V is each step's input alone
    (r = 1, gain r dt / tau = 1): input 1 a step never reaches 1.5; tau = 2 dt (decay 0.5) gives 1, 1.5 (fires)."""
    one = np.ones(1, dtype=np.float32)

    def lif(tau):
        nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
                 "lif": nir.LIF(tau=tau * one, r=tau / 0.5 * one, v_leak=0 * one, v_threshold=1.5 * one,
                                v_reset=0 * one, metadata={"fires": "v >= threshold"}),
                 "output": nir.Output(output_type={"output": np.array([1])})}
        graph = nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")], type_check=False)
        return GraphSimulator.rate_coded(graph, 0.5).run({"input": torch.ones(2, 1, 1, dtype=torch.float64)})

    assert lif(0.5)["output"].reshape(-1).tolist() == [0.0, 0.0]
    assert lif(1.0)["output"].reshape(-1).tolist() == [0.0, 1.0]
