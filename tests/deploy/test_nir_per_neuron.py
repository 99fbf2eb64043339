"""NIR spiking nodes whose constants differ per neuron: ``from_nir`` runs them as ``GraphSimulator`` and a plain
loop written here do; bad constants are one-line errors."""

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from deepspike.core.errors import ConfigError  # noqa: E402
from deepspike.deploy import GraphSimulator, from_nir  # noqa: E402
from deepspike.neurons.heterogeneous import HeterogeneousLIF  # noqa: E402

DT = 1e-3
N_IN, N = 6, 5


def _weights():
    g = np.random.default_rng(0)
    return g.normal(0.6, 0.5, size=(N, N_IN)).astype(np.float32), g.uniform(0.0, 0.1, size=N).astype(np.float32)


def _graph(neuron) -> nir.NIRGraph:
    w, b = _weights()
    nodes = {"input": nir.Input(input_type={"input": np.array([N_IN])}), "fc": nir.Affine(weight=w, bias=b),
             "spk": neuron, "output": nir.Output(output_type={"output": np.array([N])})}
    chain = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])), metadata={"dt": DT}, type_check=False)


def _lif(tau=None, r=None, threshold=None, **metadata):
    tau = np.array([2e-3, 4e-3, 8e-3, 16e-3, 1.5e-3], np.float32) if tau is None else tau
    r = np.array([1.0, 2.0, 3.0, 4.0, 1.5], np.float32) if r is None else r
    threshold = np.array([0.5, 1.0, 1.5, 2.0, 0.8], np.float32) if threshold is None else threshold
    return nir.LIF(tau=tau, r=r, v_leak=np.zeros(N, np.float32), v_threshold=threshold,
                   v_reset=np.zeros(N, np.float32), metadata=metadata)


def _cuba():
    return nir.CubaLIF(tau_syn=np.array([1e-3, 2e-3, 5e-3, 3e-3, 10e-3], np.float32),
                       tau_mem=np.array([2e-3, 4e-3, 8e-3, 16e-3, 1.5e-3], np.float32),
                       r=np.array([1.0, 2.0, 3.0, 4.0, 1.5], np.float32), w_in=np.array([1.0, 0.5, 2.0, 1.0, 1.0],
                                                                                        np.float32),
                       v_leak=np.zeros(N, np.float32), v_threshold=np.array([0.5, 1.0, 1.5, 2.0, 0.8], np.float32),
                       v_reset=np.zeros(N, np.float32), metadata={"reset": "zero"})


def _plain_loop(x: torch.Tensor, node) -> torch.Tensor:
    """Forward Euler of the node's equations over DT, one neuron array at a time, fire at v > v_threshold (NIR) or
    v >= v_threshold (metadata), reset to zero."""
    w, b = (torch.as_tensor(a, dtype=torch.float64) for a in _weights())
    f = {k: torch.as_tensor(np.asarray(getattr(node, k)), dtype=torch.float64)
         for k in ("tau", "tau_mem", "tau_syn", "r", "w_in", "v_threshold") if getattr(node, k, None) is not None}
    strict = (node.metadata or {}).get("fires") != "v >= threshold"
    v = torch.zeros(x.shape[1], N, dtype=torch.float64)
    i = torch.zeros_like(v)
    out = []
    for x_t in x.double():
        current = x_t @ w.T + b
        if "tau_syn" in f:
            i = i + DT / f["tau_syn"] * (-i + f["w_in"] * current)
            v = v + DT / f["tau_mem"] * (-v + f["r"] * i)
        else:
            v = v + DT / f["tau"] * (-v + f["r"] * current)
        s = (v > f["v_threshold"]) if strict else (v >= f["v_threshold"])
        v = torch.where(s, 0.0, v)
        out.append(s.double())
    return torch.stack(out)


def _input(steps=300, batch=3):
    return (torch.rand(steps, batch, N_IN, generator=torch.Generator().manual_seed(7)) < 0.3).float()


@pytest.mark.parametrize("node", [_lif(), _lif(fires="v >= threshold"), _cuba()], ids=["lif", "lif_ge", "cuba"])
def test_per_neuron_constants_run_as_the_simulator_and_a_plain_loop(node):
    graph = _graph(node)
    x = _input()
    with torch.no_grad():
        net = from_nir(graph)
        ours = net(x)
    assert any(isinstance(m, HeterogeneousLIF) for m in net.modules())
    loop = _plain_loop(x, node).float()
    simulated = GraphSimulator.rate_coded(graph).run({"input": x})["output"].float()
    assert 0.05 * ours.numel() < ours.sum() < 0.95 * ours.numel()  # neither silent nor saturated
    assert (ours.sum(dim=(0, 1)) > 0).all()  # every neuron fires: each constant is exercised
    assert torch.equal(ours, simulated)
    assert (ours != loop).float().mean() < 0.01  # float32 against float64 rounding near the threshold


def test_an_if_node_with_per_neuron_gain_and_threshold():
    ones = np.ones(N, np.float32)
    node = nir.IF(r=np.array([500.0, 1000.0, 1500.0, 2000.0, 800.0], np.float32),
                  v_threshold=np.array([0.5, 1.0, 1.5, 2.0, 0.8], np.float32), v_reset=0 * ones)
    graph = _graph(node)
    x = _input()
    with torch.no_grad():
        ours = from_nir(graph)(x)
    assert ours.sum() > 0.05 * ours.numel()
    assert torch.equal(ours, GraphSimulator.rate_coded(graph).run({"input": x})["output"].float())


@pytest.mark.parametrize(("node", "message"), [
    (_lif(tau=np.array([2e-3, 5e-4, 2e-3, 2e-3, 2e-3], np.float32)),
     r"tau must be > dt = 0.001 for every neuron \(decay 1 - dt/tau in \[0, 1\)\), got values down to 0.0005"),
    (_lif(state_bits=4, state_low=0.0, state_high=0.2), "a quantised membrane"),
])
def test_per_neuron_constants_that_cannot_be_run_are_one_line_errors(node, message):
    with pytest.raises(ConfigError, match=rf"^NIR import: {message}"):
        from_nir(_graph(node))


def test_a_per_neuron_lif_with_a_leak_potential_is_refused():
    node = _lif()
    node.v_leak = np.array([0.0, 0.1, 0.0, 0.0, 0.0], np.float32)
    with pytest.raises(ConfigError, match=r"^NIR import: only v_leak = 0 and v_reset = 0 are supported"):
        from_nir(_graph(node))


def _conv_graph(layout) -> nir.NIRGraph:
    """Input [2, 4, 4] -> Conv2d (3 channels) -> LIF [3, 4, 4] with per-neuron constants written as ``layout(a)``."""
    g = np.random.default_rng(3)
    shape = (3, 4, 4)
    lif = nir.LIF(tau=layout(g.uniform(1.5e-3, 2e-2, shape).astype(np.float32)),
                  r=layout(g.uniform(1.0, 4.0, shape).astype(np.float32)), v_leak=layout(np.zeros(shape, np.float32)),
                  v_threshold=layout(g.uniform(0.5, 2.0, shape).astype(np.float32)),
                  v_reset=layout(np.zeros(shape, np.float32)))
    conv = nir.Conv2d(input_shape=(4, 4), weight=g.normal(0.3, 0.5, (3, 2, 3, 3)).astype(np.float32), stride=1,
                      padding=1, dilation=1, groups=1, bias=g.uniform(0.0, 0.1, 3).astype(np.float32))
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 4, 4])}), "conv": conv, "spk": lif,
             "output": nir.Output(output_type={"output": np.array(shape)})}
    chain = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain, chain[1:])), metadata={"dt": DT}, type_check=False)


def _column_lif() -> nir.LIF:
    """``_lif``'s neurons with every constant written as a column ``[N, 1]``."""
    lif = _lif()
    return nir.LIF(**{k: np.asarray(getattr(lif, k)).reshape(N, 1) for k in ("tau", "r", "v_leak", "v_threshold",
                                                                              "v_reset")})


@pytest.mark.parametrize(("graph", "x"), [
    # [N, 1] constants for N neurons: a RuntimeError at batch 3, spikes [T, 5, 5] at batch 1 and batch N
    (_graph(_column_lif()), _input(batch=3)),
    (_graph(_column_lif()), _input(batch=1)),
    (_graph(_column_lif()), _input(batch=N)),
    # a conv layer's [3, 4, 4] neurons written flat, [48]: 'RuntimeError: The size of tensor a (4) must match ... (48)'
    (_conv_graph(np.ravel), (torch.rand(200, 2, 2, 4, 4, generator=torch.Generator().manual_seed(8)) < 0.3).float()),
], ids=["column_batch3", "column_batch1", "column_batch_n", "conv_flat"])
def test_per_neuron_constants_in_another_layout_run_as_the_simulator(graph, x):
    with torch.no_grad():
        ours = from_nir(graph)(x)
    simulated = GraphSimulator.rate_coded(graph).run({"input": x})["output"].float()
    assert 0.05 * simulated.numel() < simulated.sum() < 0.95 * simulated.numel()
    assert ours.shape == simulated.shape
    assert torch.equal(ours, simulated)


def _recurrent_graph(neuron, rec) -> nir.NIRGraph:
    """``_graph``'s chain with a recurrent weight node ``rec`` closing a cycle on the neuron node."""
    graph = _graph(neuron)
    graph.nodes["rec"] = rec
    graph.edges.extend([("spk", "rec"), ("rec", "spk")])
    return graph


_REC = np.random.default_rng(1).normal(0.0, 0.4, size=(N, N)).astype(np.float32)


@pytest.mark.parametrize("neuron", [_lif(), _cuba(), _lif(tau=np.full(N, 4e-3, np.float32), r=np.full(N, 2.0,
                                                                                                      np.float32))],
                         ids=["lif", "cuba", "threshold_only"])
@pytest.mark.parametrize("rec", [nir.Linear(weight=_REC), nir.Affine(weight=_REC, bias=np.linspace(-0.2, 0.2, N,
                                                                                                  dtype=np.float32))],
                         ids=["linear", "affine"])
def test_a_recurrent_layer_with_per_neuron_constants_runs_as_the_simulator(neuron, rec):
    # before: 'ValueError: only one element tensors can be converted to Python scalars' (the per-neuron input scale
    # folded into the recurrent weight as one number)
    graph = _recurrent_graph(neuron, rec)
    x = _input(steps=120)
    with torch.no_grad():
        ours = from_nir(graph)(x)
        without = from_nir(_graph(neuron))(x)
    simulated = GraphSimulator.rate_coded(graph).run({"input": x})["output"].float()
    assert 0.05 * simulated.numel() < simulated.sum() < 0.95 * simulated.numel()
    assert not torch.equal(simulated, without)  # the feedback changes the spikes
    assert torch.equal(ours, simulated)


def test_a_node_without_fires_metadata_fires_strictly_above_each_neurons_threshold():
    """NIR's own rule ``v > v_threshold`` (no metadata ``fires``): an IF of thresholds [1, 2] per neuron, input 1 a
    step (r = 1/dt), V = 1, 2: the first neuron fires at step 1 (2 > 1), the second at neither (2 is not > 2), as
    GraphSimulator runs it; our ``>=`` neuron holds the next float32 above each threshold (1 + 2^-23, 2 + 2^-22)."""
    one = np.ones(2, np.float32)
    node = nir.IF(r=one / DT, v_threshold=np.array([1.0, 2.0], np.float32), v_reset=0 * one)
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), "spk": node,
             "output": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "spk"), ("spk", "output")], metadata={"dt": DT},
                         type_check=False)
    net = from_nir(graph)
    neuron = next(m for m in net.modules() if isinstance(m, HeterogeneousLIF))
    assert neuron.threshold.reshape(-1).tolist() == [1.0 + 2.0 ** -23, 2.0 + 2.0 ** -22]
    x = torch.ones(2, 1, 2)
    with torch.no_grad():
        assert net(x).reshape(2, 2).tolist() == [[0.0, 0.0], [1.0, 0.0]]
    assert GraphSimulator.rate_coded(graph).run({"input": x.double()})["output"].reshape(2, 2).tolist() == [
        [0.0, 0.0], [1.0, 0.0]]
