"""Recurrent layers in NIR: a cycle ``neuron -> rec -> neuron`` read as one step of delay. deepspike's recurrent nets
are exported, read back by ``from_nir`` and simulated by ``GraphSimulator`` (float64, reading only the graph), all
spike for spike with the PyTorch net; a hand-built graph with an ``Affine`` feedback against a numpy loop; cycles that
are not recurrent layers are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.methods import create_model

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, from_nir, to_nir, write_nir  # noqa: E402
from deepspike.deploy.graph_order import feedback_edges, topological_order  # noqa: E402

T, B, F = 12, 3, 5


def _rsnn(**options):
    torch.manual_seed(0)
    settings = {"timesteps": T, "encoder": "frames", "decay": 0.8, "threshold": 0.3, **options}
    net = create_model("rsnn", method="stbp", num_classes=4, input_shape=(F,), model_args={"hidden": [6, 7]},
                       **settings).eval()
    with torch.no_grad():  # strong feedback, so that it changes the spikes
        for m in net.modules():
            if isinstance(m, RecurrentSpiking):
                m.recurrent.module.weight.mul_(2.0)
    return net


def _inputs():
    return (torch.rand(T, B, F, generator=torch.Generator().manual_seed(1)) < 0.4).float()


@pytest.mark.parametrize(("neuron", "reset"), [("lif", "zero"), ("lif", "subtract"), ("synaptic", "subtract")])
def test_a_recurrent_net_round_trips_spike_for_spike(tmp_path, neuron, reset):
    net, x = _rsnn(neuron=neuron, reset=reset), _inputs()
    path = write_nir(to_nir(net, (F,)), tmp_path / "r.nir")
    graph = nir.read(str(path))
    recurrent = [(a, b) for a, b in graph.edges if b.endswith("_rec")]
    assert len(recurrent) == 2 and all((b, a) in graph.edges for a, b in recurrent)  # the two cycles
    with torch.no_grad():
        ours = net.readout.neuron(net.body(x))
    imported = from_nir(path)
    assert sum(isinstance(m, RecurrentSpiking) for m in imported.modules()) == 2
    with torch.no_grad():
        theirs = imported(x)
    simulator = GraphSimulator.rate_coded(graph)
    simulated = simulator.run({"input": x})["output"].float()
    simulator.reset()
    pieces = torch.cat([simulator.run({"input": x[:5]})["output"], simulator.run({"input": x[5:]})["output"]])
    assert ours.sum() > 0 and torch.equal(theirs, ours)
    assert torch.equal(simulated, ours) and torch.equal(pieces.float(), ours)
    cut = nir.NIRGraph(nodes={k: n for k, n in graph.nodes.items() if not k.endswith("_rec")},
                       edges=[e for e in graph.edges if not any(k.endswith("_rec") for k in e)],
                       metadata=graph.metadata, type_check=False)
    assert not torch.equal(GraphSimulator.rate_coded(cut).run({"input": x})["output"].float(), ours)  # it matters


def _hand_graph(bias: bool):
    """input(2) -> Linear W -> LIF(tau = dt / 0.2, r = tau / dt, threshold 0.5, reset to 0) <-> Affine/Linear V."""
    dt = 1e-3
    rng = np.random.default_rng(3)  # no round numbers: no membrane lands exactly on the threshold
    w = rng.uniform(-0.3, 0.9, (3, 2)).astype(np.float32)
    v = rng.uniform(-0.6, 0.6, (3, 3)).astype(np.float32)
    b = rng.uniform(-0.05, 0.1, 3).astype(np.float32)
    tau = np.full(3, dt / 0.2, dtype=np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2])}),
        "w": nir.Linear(weight=w),
        "lif": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(3, np.float32), v_threshold=np.full(3, 0.5, np.float32),
                       v_reset=np.zeros(3, np.float32)),
        "v": nir.Affine(weight=v, bias=b) if bias else nir.Linear(weight=v),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "w"), ("w", "lif"), ("lif", "v"), ("v", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)
    return graph, w, v, b if bias else np.zeros(3, np.float32)


@pytest.mark.parametrize("bias", [False, True])
def test_a_hand_built_recurrent_graph_against_a_numpy_loop(bias):
    """``h = 0.8 v + W x_t + V s_{t-1} + b`` (forward Euler: decay 1 - dt/tau = 0.8, gain r dt/tau = 1), spike where
    ``h > 0.5`` (NIR's rule), reset to 0; ``V s_{-1} + b = b``: the feedback node's output for a zero input."""
    graph, w, v, b = _hand_graph(bias)
    x = (np.random.default_rng(2).random((20, 2, 2)) < 0.6).astype(np.float32)
    decay = 1.0 - 1e-3 / np.float64(np.float32(1e-3 / 0.2))  # 0.8 up to tau's float32 rounding
    mem, spikes, want = np.zeros((2, 3)), np.zeros((2, 3)), []
    for t in range(20):
        h = decay * mem + x[t] @ w.T.astype(np.float64) + spikes @ v.T.astype(np.float64) + b
        spikes = (h > 0.5).astype(np.float64)
        mem = h * (1 - spikes)
        want.append(spikes)
    want = torch.tensor(np.stack(want))
    simulated = GraphSimulator.rate_coded(graph).run({"input": torch.from_numpy(x)})["output"]
    with torch.no_grad():
        imported = from_nir(graph)(torch.from_numpy(x))
    assert 0 < want.sum() < want.numel()
    assert torch.equal(simulated, want)
    assert torch.equal(imported.double(), want)


def test_feedback_edges_close_every_cycle_and_nothing_else():
    graph, *_ = _hand_graph(False)
    assert feedback_edges(graph) == [("v", "lif")]
    assert topological_order(graph, skip=feedback_edges(graph)) == ["input", "w", "lif", "v", "output"]
    with pytest.raises(ConfigError, match="it has a cycle, which this reader does not take"):
        topological_order(graph)
    acyclic = nir.NIRGraph(nodes=graph.nodes, edges=[("input", "w"), ("w", "lif"), ("lif", "output")],
                           type_check=False)
    assert feedback_edges(acyclic) == []


def test_cycles_that_are_not_recurrent_layers_are_one_line_errors():
    graph, *_ = _hand_graph(False)
    nodes = dict(graph.nodes)
    nodes["v2"] = nir.Linear(weight=np.eye(3, dtype=np.float32))
    edges = [("input", "w"), ("w", "lif"), ("lif", "v"), ("v", "v2"), ("v2", "lif"), ("lif", "output")]
    long_cycle = nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata, type_check=False)
    with pytest.raises(ConfigError, match="'v2' -> 'lif' is not a recurrent layer"):
        from_nir(long_cycle)
    self_loop = nir.NIRGraph(nodes=graph.nodes, edges=[*graph.edges, ("lif", "lif")], metadata=graph.metadata,
                             type_check=False)
    with pytest.raises(ConfigError, match="feedback edge 'lif' -> 'lif' starts at a LIF node"):
        GraphSimulator.rate_coded(self_loop)
    with pytest.raises(ConfigError, match="fold_thresholds would have to rescale a recurrent weight"):
        to_nir(_rsnn(), (F,), fold_thresholds=True)


def _nested(sub, edges_into="rnn", edges_out_of="rnn"):
    """input(2) -> Linear W -> subgraph 'rnn' -> output, the recurrent layer written as a nested NIRGraph."""
    flat, w, *_ = _hand_graph(False)
    nodes = {"input": flat.nodes["input"], "w": flat.nodes["w"], "rnn": sub, "output": flat.nodes["output"]}
    edges = [("input", "w"), ("w", edges_into), (edges_out_of, "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=flat.metadata, type_check=False), flat


@pytest.mark.parametrize(("into", "out_of"), [("rnn", "rnn"), ("rnn.input", "rnn.output")])
def test_a_recurrent_layer_written_as_a_nested_subgraph_is_inlined(into, out_of):
    """snnTorch's RLeaky export and Spyx's recurrent layers nest ``input -> lif <-> w_rec -> output`` as one subgraph
    node; edges may name the subgraph or its Input/Output. Inlined, it runs like the flat graph, spike for spike."""
    flat, *_ = _hand_graph(False)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "lif": flat.nodes["lif"],
                              "w_rec": flat.nodes["v"], "output": nir.Output(output_type={"output": np.array([3])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                       type_check=False)
    nested, flat = _nested(sub, into, out_of)
    x = torch.from_numpy((np.random.default_rng(2).random((20, 2, 2)) < 0.6).astype(np.float32))
    want = GraphSimulator.rate_coded(flat).run({"input": x})["output"]
    assert 0 < want.sum() < want.numel()
    assert torch.equal(GraphSimulator.rate_coded(nested).run({"input": x})["output"], want)
    with torch.no_grad():
        assert torch.equal(from_nir(nested)(x).double(), want)


def test_snntorchs_own_rleaky_subgraph_is_read_like_rleaky():
    """The subgraph snnTorch 1.0.0 writes for an ``RLeaky`` (its exporter's per-module function; its whole-net export
    fails NIR 1.0.8's type check), embedded after a Linear: ``from_nir`` gives RLeaky's spikes (reset to zero applied
    in the same step, snnTorch's ``v > th``; deepspike's ``v >= th`` ties with probability 0 here)."""
    snn = pytest.importorskip("snntorch")
    export_nir = pytest.importorskip("snntorch.export_nir")
    torch.manual_seed(0)
    rleaky = snn.RLeaky(beta=0.8, threshold=0.5, linear_features=3, all_to_all=True, reset_mechanism="zero",
                        reset_delay=False)
    w = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        rleaky.recurrent.weight.normal_(0.0, 0.6)
        w.weight.uniform_(-0.3, 0.9)
    nested, _ = _nested(export_nir._extract_snntorch_module(rleaky))
    nested.nodes["w"] = nir.Linear(weight=w.weight.detach().numpy())
    nested.metadata = {"dt": 1e-4}  # snnTorch's fixed step: tau = dt / (1 - beta), r = tau / dt
    x = (torch.rand(30, 2, 2, generator=torch.Generator().manual_seed(3)) < 0.6).float()
    with torch.no_grad():
        spk, mem = rleaky.reset_mem()
        want = []
        for t in range(30):
            spk, mem = rleaky(w(x[t]), spk, mem)
            want.append(spk)
        got = from_nir(nested)(x)
    want = torch.stack(want)
    assert 0 < want.sum() < want.numel()
    assert torch.equal(got, want)
