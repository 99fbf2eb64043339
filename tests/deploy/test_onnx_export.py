"""NIR graphs as ONNX models (``deploy.onnx_export``), run by two independent ONNX runtimes against GraphSimulator.

* Every node type the exporter writes, in one hand-built chain (Conv2d with bias, per-neuron LIF with a leak
  potential and a reset potential, SumPool2d, IF reset by subtraction firing at ``>=``, AvgPool2d with padding,
  Flatten, Affine, Scale, per-element Delay, CubaLIF, Linear, a non-spiking LI output): the float64 model run by
  onnx's reference evaluator (pure numpy) gives GraphSimulator's float64 output; spikes exactly, the LI membrane to
  1e-12 (the two sum a convolution in different orders).
* The continuous-time reading ("exact", "areas"): CubaLIF with its pending spike and LIF, bit for bit.
* A recurrent layer (a feedback edge through an Affine with a bias), in onnxruntime (float32): the "step" model
  stepped with its states and the "sequence" model in one call both give the simulator's spikes.
* The Threshold node, by hand; the declared inputs, outputs and states; a file written and read back.
* Membranes quantised in training (``state_bits`` metadata): float64 against the simulator (NaN kept), and a net with
  4- and 3-bit membranes in onnxruntime against deepspike's own spikes.
* Refusals in one line: a node type it does not write, a bad form or dtype, a bad dt, one node.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.deploy.families import build, reference_spikes, sample_input
from deepspike.neurons.modules import LIF
from deepspike.neurons.state_quant import StateQuant

nir = pytest.importorskip("nir")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx.reference import ReferenceEvaluator  # noqa: E402

from deepspike.deploy import GraphSimulator, to_nir  # noqa: E402
from deepspike.deploy.onnx_export import nir_to_onnx, write_onnx  # noqa: E402
from deepspike.deploy.onnx_run import onnx_session, run_onnx  # noqa: E402
from deploy.nir_files import tiny_graph, word_padded_conv  # noqa: E402

DT = 1e-3


def _f(rng, *shape, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(np.float32)


def _every_node_graph() -> nir.NIRGraph:
    """input [2, 6, 6] -> conv [3, 6, 6] -> lif -> sum pool [3, 3, 3] -> if -> avg pool (pad 1) [3, 4, 4] -> flatten
    [48] -> affine [8] -> scale -> delay -> cuba -> linear [4] -> li -> output."""
    rng = np.random.default_rng(7)
    chain = {
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=_f(rng, 3, 2, 3, 3, scale=0.8), stride=1, padding=1,
                           dilation=1, groups=1, bias=_f(rng, 3, scale=0.1)),
        "lif": nir.LIF(tau=rng.uniform(2e-3, 8e-3, (3, 6, 6)), r=rng.uniform(0.5, 2.0, (3, 6, 6)),
                       v_leak=np.full((3, 6, 6), 0.05), v_threshold=rng.uniform(0.3, 0.8, (3, 6, 6)),
                       v_reset=np.full((3, 6, 6), -0.1)),
        "sum": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "if": nir.IF(r=np.full((3, 3, 3), 1 / DT), v_threshold=np.full((3, 3, 3), 1.0), v_reset=np.zeros((3, 3, 3)),
                     metadata={"reset": "subtract", "fires": "v >= threshold"}),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([1, 1])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0, end_dim=-1),
        "affine": nir.Affine(weight=_f(rng, 8, 48), bias=_f(rng, 8, scale=0.2)),
        "scale": nir.Scale(scale=rng.uniform(0.5, 1.5, 8)),
        "delay": nir.Delay(delay=np.array([0, 1, 2, 3, 0, 1, 2, 3]) * DT),
        "cuba": nir.CubaLIF(tau_syn=np.full(8, 4e-3), tau_mem=np.full(8, 6e-3), r=np.full(8, 1.5),
                            v_leak=np.zeros(8), v_threshold=np.full(8, 0.4), w_in=np.full(8, 1.2)),
        "linear": nir.Linear(weight=_f(rng, 4, 8)),
        "li": nir.LI(tau=np.full(4, 5e-3), r=np.ones(4), v_leak=np.zeros(4)),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    names = list(chain)
    return nir.NIRGraph(nodes=chain, edges=list(zip(names, names[1:])), metadata={"dt": DT}, type_check=False)


def _reference(model, x: torch.Tensor) -> torch.Tensor:
    """onnx's pure-numpy reference evaluator on a sequence model."""
    return torch.from_numpy(ReferenceEvaluator(model).run(None, {"input": x.numpy()})[0])


def test_every_node_type_in_float64_gives_the_simulators_output():
    graph = _every_node_graph()
    g = torch.Generator().manual_seed(0)
    x = torch.rand((12, 2, 2, 6, 6), generator=g, dtype=torch.float64) * 3  # currents held over each step
    expected = GraphSimulator(graph, DT, "euler", "currents").run({"input": x})["output"]
    theirs = _reference(nir_to_onnx(graph, form="sequence", dtype="float64"), x)
    assert theirs.dtype == torch.float64 and theirs.shape == expected.shape == (12, 2, 4)
    assert expected.abs().sum() > 0 and (expected[3:] != expected[2]).any()  # the membrane moves after the delays
    torch.testing.assert_close(theirs, expected, rtol=1e-12, atol=1e-12)


def test_every_node_types_spikes_agree_exactly_in_float64():
    graph = _every_node_graph()
    graph.nodes["output"] = nir.Output(output_type={"output": np.array([8])})
    graph.edges = [e for e in graph.edges if e[0] not in ("cuba", "linear", "li")] + [("cuba", "output")]
    del graph.nodes["linear"], graph.nodes["li"]
    x = torch.rand((12, 3, 2, 6, 6), generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    expected = GraphSimulator(graph, DT, "euler", "currents").run({"input": x})["output"]
    theirs = _reference(nir_to_onnx(graph, form="sequence", dtype="float64"), x)
    assert 0 < expected.sum() < expected.numel()
    assert torch.equal(theirs, expected)


def _exact_graph() -> nir.NIRGraph:
    rng = np.random.default_rng(3)
    chain = {"input": nir.Input(input_type={"input": np.array([5])}),
             "affine": nir.Affine(weight=_f(rng, 6, 5), bias=_f(rng, 6, scale=30.0)),
             "cuba": nir.CubaLIF(tau_syn=np.full(6, 2e-3), tau_mem=np.full(6, 3e-3), r=np.ones(6), v_leak=np.zeros(6),
                                 v_threshold=np.full(6, 0.2), w_in=np.ones(6)),
             "linear": nir.Linear(weight=_f(rng, 3, 6, scale=2.0)),
             "lif": nir.LIF(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.full(3, 0.01), v_threshold=np.full(3, 0.5),
                            v_reset=np.zeros(3)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    names = list(chain)
    return nir.NIRGraph(nodes=chain, edges=list(zip(names, names[1:])), metadata={"dt": DT}, type_check=False)


def test_continuous_time_reading_with_pending_spikes_is_the_simulators():
    graph = _exact_graph()
    x = (torch.rand((40, 4, 5), generator=torch.Generator().manual_seed(2)) < 0.3).double()  # spikes: areas of 1
    expected = GraphSimulator(graph, DT).run({"input": x})["output"]  # "exact", "areas"
    model = nir_to_onnx(graph, integration="exact", signals="areas", form="sequence", dtype="float64")
    assert expected.sum() > 0
    assert torch.equal(_reference(model, x), expected)
    assert torch.equal(run_onnx(onnx_session(model), x), expected)  # onnxruntime has double MatMul kernels


def _recurrent_graph() -> nir.NIRGraph:
    rng = np.random.default_rng(5)
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "w_in": nir.Affine(weight=_f(rng, 6, 4, scale=0.8), bias=np.zeros(6, np.float32)),
             "lif": nir.LIF(tau=np.full(6, 2e-3), r=np.full(6, 2.0), v_leak=np.zeros(6), v_threshold=np.ones(6),
                            v_reset=np.zeros(6), metadata={"fires": "v >= threshold"}),
             "w_rec": nir.Affine(weight=_f(rng, 6, 6, scale=0.6), bias=np.full(6, 0.3, np.float32)),
             "output": nir.Output(output_type={"output": np.array([6])})}
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}, type_check=False)


def test_recurrent_layer_in_onnxruntime_step_and_sequence_forms():
    graph = _recurrent_graph()
    x = (torch.rand((30, 3, 4), generator=torch.Generator().manual_seed(4)) < 0.4).float()
    expected = GraphSimulator.rate_coded(graph).run({"input": x})["output"].float()
    step = onnx_session(nir_to_onnx(graph, form="step"))
    assert {i.name for i in step.get_inputs()} == {"input", "state.lif.v", "state.w_rec.input"}
    assert {o.name for o in step.get_outputs()} == {"output", "next.lif.v", "next.w_rec.input"}
    assert 0 < expected.sum() < expected.numel()
    assert torch.equal(run_onnx(step, x), expected)
    assert torch.equal(run_onnx(onnx_session(nir_to_onnx(graph, form="sequence")), x), expected)


def test_feedback_before_the_first_step_is_the_recurrent_bias():
    graph = _recurrent_graph()
    graph.nodes["w_in"] = nir.Affine(weight=np.zeros((6, 4), np.float32), bias=np.zeros(6, np.float32))
    out = run_onnx(onnx_session(nir_to_onnx(graph)), torch.zeros(1, 1, 4))
    # hand-computed: no input and no spike yet, so the LIF receives only w_rec's bias 0.3 in step 0: decay
    # 1 - dt/tau = 0.5, gain r dt / tau = 1, h = 0.3 < 1: no spike; a missing bias would also give none, so check h
    step = onnx_session(nir_to_onnx(graph))
    zeros = {i.name: np.zeros((1, 6), np.float32) for i in step.get_inputs()[1:]}
    result = dict(zip([o.name for o in step.get_outputs()], step.run(None, {"input": np.zeros((1, 4), np.float32),
                                                                             **zeros})))
    assert out.sum() == 0
    np.testing.assert_allclose(result["next.lif.v"], np.full((1, 6), 0.3), rtol=1e-6)


def _stepped(model, x: torch.Tensor) -> torch.Tensor:
    """A one-input, one-output step model run by onnx's reference evaluator over ``x [T, B, ...]``: the states (the
    inputs after the data, the outputs after the data, in the same order) start at zeros and are fed back by
    position, not by name."""
    run = ReferenceEvaluator(model)
    states = [np.zeros((x.shape[1], *(d.dim_value for d in v.type.tensor_type.shape.dim[1:])), x.numpy().dtype)
              for v in model.graph.input[1:]]
    outs = []
    for t in range(x.shape[0]):
        out, *states = run.run(None, {model.graph.input[0].name: x[t].numpy(),
                                      **{v.name: s for v, s in zip(model.graph.input[1:], states)}})
        outs.append(out)
    return torch.from_numpy(np.stack(outs))


@pytest.mark.parametrize("names", [("state.lif.v", "output"), ("input", "next.lif.v"), ("state.lif.v", "next.lif.v")])
def test_nodes_named_like_a_state_leave_the_states_their_own_names(names):
    """An Input named ``state.lif.v`` made the LIF's state ``state.lif.v_1`` but looked up ``state.lif.v``
    (StopIteration); an Output named ``next.lif.v`` was declared twice as a graph output, once for the state.
    Now each state's pair is ``state.lif.v_1`` / ``next.lif.v_1`` and the model computes the simulator's spikes."""
    rng = np.random.default_rng(9)
    nodes = {names[0]: nir.Input(input_type={"input": np.array([5])}), "affine": nir.Affine(weight=_f(rng, 3, 5),
                                                                                           bias=_f(rng, 3)),
             "lif": nir.LIF(tau=np.full(3, 2e-3), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.full(3, 0.5),
                            v_reset=np.zeros(3)),
             names[1]: nir.Output(output_type={"output": np.array([3])})}
    edges = [(names[0], "affine"), ("affine", "lif"), ("lif", names[1])]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}, type_check=False)
    x = (torch.rand((25, 2, 5), generator=torch.Generator().manual_seed(9)) < 0.5).double()
    expected = GraphSimulator(graph, DT, "euler", "currents").run({names[0]: x})[names[1]]
    step = nir_to_onnx(graph, form="step", dtype="float64")
    assert [v.name for v in step.graph.input] == [names[0], "state.lif.v_1"]
    assert [v.name for v in step.graph.output] == [names[1], "next.lif.v_1"]
    assert 0 < expected.sum() < expected.numel()
    assert torch.equal(_stepped(step, x), expected)
    sequence = nir_to_onnx(graph, form="sequence", dtype="float64")
    assert torch.equal(torch.from_numpy(ReferenceEvaluator(sequence).run(None, {names[0]: x.numpy()})[0]), expected)


def test_the_models_metadata_is_the_graphs_with_the_dt_it_was_written_with():
    graph = _every_node_graph()
    graph.metadata.update(encoder=b"poisson", timesteps=np.int64(7), input_mean=np.array([0.25, 0.5]))
    model = nir_to_onnx(graph, dt=DT / 2)
    props = {p.key: p.value for p in model.metadata_props}
    states = json.loads(props.pop("deepspike.states"))  # which inputs are states, each with its output
    assert props == {"dt": "0.0005", "encoder": "poisson", "timesteps": "7", "input_mean": "[0.25, 0.5]",
                     "decode": "membrane"}  # its LI readout's, as from_nir reads it
    assert states == {v.name: "next." + v.name[len("state."):] for v in model.graph.input[1:]} != {}
    assert {p.key: p.value for p in nir_to_onnx(graph).metadata_props}["dt"] == "0.001"  # the graph's own


def test_threshold_node_by_hand():
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                                "thr": nir.Threshold(threshold=np.array([0.5, 1.0, -0.25], np.float32)),
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "thr"), ("thr", "output")], metadata={"dt": DT}, type_check=False)
    x = torch.tensor([[[0.6, 1.0, -0.3]], [[0.5, 2.0, 0.0]]])
    assert run_onnx(onnx_session(nir_to_onnx(graph)), x).tolist() == [[[1.0, 0.0, 0.0]], [[0.0, 1.0, 1.0]]]


def test_one_delay_and_threshold_per_value_in_a_flat_layout_by_a_plain_loop():
    """A Delay and a Threshold on a [2, 3, 3] layer given one value per element as a flat [18] (check_shapes accepts
    "one per value"): nir_to_onnx ended in numpy's broadcast ValueError for the Delay, and the Threshold's model failed
    in the runtime. Now both are read in row-major order, as the neurons' parameters are: y[t, b, e] = x[t - k_e, b,
    e] > th_e (x = 0 before the first step) by a plain loop."""
    steps, th = np.arange(18) % 4, np.linspace(-0.5, 1.5, 18)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2, 3, 3])}),
                                "delay": nir.Delay(delay=steps * DT), "thr": nir.Threshold(threshold=th),
                                "output": nir.Output(output_type={"output": np.array([2, 3, 3])})},
                         edges=[("input", "delay"), ("delay", "thr"), ("thr", "output")], metadata={"dt": DT},
                         type_check=False)
    x = torch.rand((9, 2, 2, 3, 3), generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 0.5
    expected, flat = torch.zeros(9, 2, 18, dtype=torch.float64), x.reshape(9, 2, 18)
    for t in range(9):
        for e in range(18):  # zeros before the first step
            delayed = flat[t - steps[e], :, e] if t >= steps[e] else torch.zeros(2, dtype=torch.float64)
            expected[t, :, e] = (delayed > th[e]).double()
    expected = expected.reshape(9, 2, 2, 3, 3)
    assert 0 < expected.sum() < expected.numel()
    assert torch.equal(_reference(nir_to_onnx(graph, form="sequence", dtype="float64"), x), expected)
    assert torch.equal(_stepped(nir_to_onnx(graph, dtype="float64"), x), expected)


def test_written_file_reads_back_and_runs_the_same(tmp_path):
    graph = _recurrent_graph()
    model = nir_to_onnx(graph, form="sequence")
    path = write_onnx(model, tmp_path / "net.onnx")
    x = (torch.rand((20, 2, 4), generator=torch.Generator().manual_seed(6)) < 0.4).float()
    onnx.checker.check_model(str(path), full_check=True)
    assert onnx.load(str(path)).opset_import[0].version == 17
    assert torch.equal(run_onnx(onnx_session(path), x), run_onnx(onnx_session(model), x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]  # no temporary file left


def test_a_model_past_the_2_gib_of_a_file_is_refused_before_protobuf_holds_it(monkeypatch):
    """A 23,200 x 23,200 float32 Linear (2.0 GiB) ended in protobuf's "EncodeError: Failed to serialize proto" inside
    nir_to_onnx (write_onnx's own size check came too late). The constants are now counted as they are made: with the
    limit put at 1 MiB + 60 kB, a 100 x 100 weight passes in float32 (40 kB) and is refused in float64 (80 kB)."""
    from deepspike.deploy import onnx_export

    monkeypatch.setattr(onnx_export, "MAX_PROTOBUF_BYTES", 2**20 + 60_000)  # GRAPH_BYTES: 1 MiB
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([100])}),
                                "w": nir.Linear(weight=np.ones((100, 100), np.float32)),
                                "output": nir.Output(output_type={"output": np.array([100])})},
                         edges=[("input", "w"), ("w", "output")], metadata={"dt": DT}, type_check=False)
    assert nir_to_onnx(graph).graph.initializer[0].dims == [100, 100]
    for form in ("step", "sequence"):
        assert "GiB, past the 2 GiB an ONNX file holds" in _refusal(graph, form=form, dtype="float64")


def test_quantised_membranes_in_float64_give_the_simulators_spikes():
    graph = _every_node_graph()
    graph.nodes["output"] = nir.Output(output_type={"output": np.array([3, 3, 3])})
    keep = ("input", "conv", "lif", "sum", "if", "output")
    graph.nodes = {k: v for k, v in graph.nodes.items() if k in keep}
    graph.edges = list(zip(keep, keep[1:]))
    uniform = np.full((3, 6, 6), 0.6)
    graph.nodes["lif"].v_threshold = uniform  # one threshold per layer, as a quantised membrane has
    graph.nodes["lif"].metadata = {"state_bits": 3, "state_low": 0.5, "state_high": 0.25}
    graph.nodes["if"].metadata.update({"state_bits": 2, "state_low": 0.0, "state_high": 0.2})
    x = torch.rand((10, 2, 2, 6, 6), generator=torch.Generator().manual_seed(8), dtype=torch.float64) * 3
    x[3, 0, 0, 2, 2] = float("nan")  # kept through the quantiser, as in the simulator
    expected = GraphSimulator(graph, DT, "euler", "currents").run({"input": x})["output"]
    plain = dict(graph.nodes)
    assert torch.equal(_reference(nir_to_onnx(graph, form="sequence", dtype="float64"), x), expected)
    for node in ("lif", "if"):
        plain[node].metadata = {k: v for k, v in plain[node].metadata.items() if not k.startswith("state_")}
    unquantised = GraphSimulator(graph, DT, "euler", "currents").run({"input": x})["output"]
    assert expected.sum() > 0 and not torch.equal(expected, unquantised)  # the levels changed the spikes


def test_a_net_trained_with_quantised_membranes_runs_in_onnxruntime_as_in_deepspike():
    net = build("conv")
    for i, layer in enumerate(net.body):
        if isinstance(layer, LIF):
            net.body[i] = LIF(decay=0.9, threshold=1.0, reset="subtract", state_quant=StateQuant(4, 0.0, 0.2))
    net.readout.neuron = LIF(decay=0.9, threshold=1.0, state_quant=StateQuant(3, 0.5, 0.5))
    x = sample_input("conv", 300, batch=2)
    ours = reference_spikes(net, x)
    theirs = run_onnx(onnx_session(nir_to_onnx(to_nir(net, (1, 8, 8)))), x)
    assert 0 < ours.sum() < ours.numel() and torch.equal(theirs, ours)


def test_a_membrane_midway_between_two_levels_goes_to_the_lower_one():
    """2 bits on [-1, 1]: levels -1, -1/3, 1/3, 1 (float32); h = 0 lies midway: -1/3 (snnTorch's argmin rule)."""
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "if": nir.IF(r=np.full(2, 1 / DT), v_threshold=np.ones(2), v_reset=np.zeros(2),
                                             metadata={"state_bits": 2, "state_low": 0.0, "state_high": 0.0}),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "if"), ("if", "output")], metadata={"dt": DT}, type_check=False)
    step = onnx_session(nir_to_onnx(graph))
    result = step.run(None, {"input": np.array([[0.0, 0.5]], np.float32), "state.if.v": np.zeros((1, 2), np.float32)})
    levels = torch.linspace(-1.0, 1.0, 4, dtype=torch.float32).tolist()  # StateQuant's table
    assert result[1].tolist() == [[levels[1], levels[2]]] and result[0].tolist() == [[0.0, 0.0]]


def _refusal(graph, **options) -> str:
    with pytest.raises(ConfigError) as e:
        nir_to_onnx(graph, **options)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_refusals_are_one_line():
    conv1d = _recurrent_graph()
    conv1d.nodes["w_in"] = nir.Conv1d(input_shape=4, weight=np.ones((6, 1, 1), np.float32), stride=1, padding=0,
                                      dilation=1, groups=1, bias=np.zeros(6, np.float32))
    assert "Conv1d is not supported" in _refusal(conv1d)
    assert "form must be" in _refusal(_recurrent_graph(), form="loop")
    assert "dtype must be" in _refusal(_recurrent_graph(), dtype="float16")
    assert "dt = -0.001 is not a positive number" in _refusal(_recurrent_graph(), dt=-1e-3)
    assert "forward Euler needs dt <= tau" in _refusal(_recurrent_graph(), dt=1.0)
    assert "single" in _refusal(nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_a_conv_padded_by_a_word_is_written_as_torchs_own_padding(padding):
    """Word padding was refused ('string padding ... is not supported'; before that, 'the shape of node 'conv' is
    not known'). NIR allows it with torch's meaning: the model gives torch's ``F.conv2d(padding=word)``."""
    graph, weight, bias = word_padded_conv(padding)
    x = torch.rand(3, 2, 1, 6, 7, generator=torch.Generator().manual_seed(3))
    expected = F.conv2d(x.flatten(0, 1), torch.tensor(weight, dtype=torch.float32),
                        torch.tensor(bias, dtype=torch.float32), padding=padding)
    got = run_onnx(onnx_session(nir_to_onnx(graph)), x)
    torch.testing.assert_close(got.flatten(0, 1), expected)


def test_a_same_padding_of_an_even_kernel_is_refused_by_name():
    # the refusal said "the shape of node 'conv' is not known", not what was wrong with it
    graph = _every_node_graph()
    graph.nodes["conv"].padding = "same"
    graph.nodes["conv"].weight = graph.nodes["conv"].weight[:, :, :2]
    with pytest.raises(DataCorruptError) as e:
        nir_to_onnx(graph)
    assert "node 'conv': padding 'same' of a 2x3 kernel at dilation [1, 1] pads one side one more than the other" in (
        str(e.value)) and "\n" not in str(e.value)


def test_another_tools_li_readout_says_it_decodes_by_its_membrane_as_from_nir_reads_it():
    """An LI readout whose file says no ``decode``: ``from_nir`` reads its membrane (``decode: membrane``), but the
    ONNX model's metadata said nothing, so its trace was left to be counted like spikes; a file's own decode wins."""
    from deepspike.deploy import from_nir

    ones = np.ones(2, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "li": nir.LI(tau=ones * 2e-4, r=ones * 2, v_leak=ones * 0),
             "output": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "li"), ("li", "output")], metadata={"dt": 1e-4},
                         type_check=False)
    props = {p.key: p.value for p in nir_to_onnx(graph).metadata_props}
    assert props["decode"] == from_nir(graph).metadata["decode"] == "membrane"
    graph.metadata["decode"] = "rate"
    assert {p.key: p.value for p in nir_to_onnx(graph).metadata_props}["decode"] == "rate"
    assert "decode" not in {p.key for p in nir_to_onnx(tiny_graph()).metadata_props}  # a spiking readout
