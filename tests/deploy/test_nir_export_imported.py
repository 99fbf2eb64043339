"""Nets read by ``from_nir`` written back by ``to_nir``: the new file runs as the imported net does, in ``from_nir``
and in ``GraphSimulator`` (the independent reference), for every kind of node the importer builds, after training
the imported net too; its metadata keeps how the input is coded and the output decoded."""

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from deepspike.api import evaluate_nir, export  # noqa: E402
from deepspike.core.errors import ConfigError  # noqa: E402
from deepspike.deploy import GraphSimulator, from_nir, to_nir, write_nir  # noqa: E402
from deepspike.deploy.nir_export import per_neuron_integrator_node  # noqa: E402
from deepspike.methods import create_model  # noqa: E402
from deploy.nir_files import tiny_graph  # noqa: E402

DT = 1e-3
N_IN, N = 6, 5
_RNG = np.random.default_rng(11)
_W = _RNG.normal(0.6, 0.5, size=(N, N_IN)).astype(np.float32)
_B = _RNG.uniform(0.0, 0.1, size=N).astype(np.float32)


def _chain(*named_nodes, in_shape=(N_IN,), out_shape=(N,), edges=None) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)}), **dict(named_nodes),
             "output": nir.Output(output_type={"output": np.array(out_shape)})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=edges or list(zip(names, names[1:])), metadata={"dt": DT},
                        type_check=False)


def _per_neuron_lif(fires: str = "v >= threshold") -> nir.LIF:
    return nir.LIF(tau=np.array([2e-3, 4e-3, 8e-3, 16e-3, 1.5e-3], np.float32),
                   r=np.array([1.0, 2.0, 3.0, 4.0, 1.5], np.float32), v_leak=np.zeros(N, np.float32),
                   v_threshold=np.array([0.5, 1.0, 1.5, 2.0, 0.8], np.float32), v_reset=np.zeros(N, np.float32),
                   metadata={"fires": fires})


def _per_neuron_cuba() -> nir.CubaLIF:
    return nir.CubaLIF(tau_syn=np.array([1e-3, 2e-3, 5e-3, 3e-3, 10e-3], np.float32),
                       tau_mem=np.array([2e-3, 4e-3, 8e-3, 16e-3, 1.5e-3], np.float32),
                       r=np.array([1.0, 2.0, 3.0, 4.0, 1.5], np.float32),
                       w_in=np.array([1.0, 0.5, 2.0, 1.0, 1.0], np.float32), v_leak=np.zeros(N, np.float32),
                       v_threshold=np.array([0.5, 1.0, 1.5, 2.0, 0.8], np.float32), v_reset=np.zeros(N, np.float32),
                       metadata={"reset": "subtract"})


def _uniform_lif(r: float = 2.5, reset: str = "zero") -> nir.LIF:
    ones = np.ones(N, np.float32)
    return nir.LIF(tau=ones * 5e-3, r=ones * r, v_leak=0 * ones, v_threshold=ones * 0.7, v_reset=0 * ones,
                   metadata={"reset": reset})


def _recurrent() -> nir.NIRGraph:
    graph = _chain(("fc", nir.Affine(weight=_W, bias=_B)), ("spk", _per_neuron_lif()))
    graph.nodes["rec"] = nir.Linear(weight=_RNG.normal(0.0, 0.4, size=(N, N)).astype(np.float32))
    graph.edges.extend([("spk", "rec"), ("rec", "spk")])
    return graph


def _branching() -> nir.NIRGraph:
    """input -> fc1 -> lif1 -> fc2 -> lif2 -> output, with a skip lif1 -> lif2 (NIR sums lif2's inputs)."""
    nodes = (("fc1", nir.Affine(weight=_W, bias=_B)), ("lif1", _uniform_lif(r=1.0, reset="subtract")),
             ("fc2", nir.Linear(weight=_RNG.normal(0.2, 0.4, size=(N, N)).astype(np.float32))),
             ("lif2", _per_neuron_lif()))
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif1", "lif2"),
             ("lif2", "output")]
    return _chain(*nodes, edges=edges)


def _pooled_conv() -> nir.NIRGraph:
    """Conv2d -> a standalone Scale node -> IF -> SumPool2d -> Flatten -> Affine -> LI readout with a gain."""
    conv = nir.Conv2d(input_shape=(4, 4), weight=_RNG.normal(0.3, 0.5, (3, 2, 3, 3)).astype(np.float32), stride=1,
                      padding=1, dilation=1, groups=1, bias=np.zeros(3, np.float32))
    ones = np.ones((3, 4, 4), np.float32)
    nodes = (("conv", conv), ("scale", nir.Scale(scale=_RNG.uniform(0.5, 2.0, (3, 4, 4)).astype(np.float32))),
             ("if", nir.IF(r=ones / DT, v_threshold=ones, v_reset=0 * ones)),
             ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
             ("flat", nir.Flatten(input_type={"input": np.array([3, 2, 2])}, start_dim=0, end_dim=-1)),
             ("fc", nir.Affine(weight=_RNG.normal(0.0, 0.5, (4, 12)).astype(np.float32), bias=np.zeros(4, np.float32))),
             ("li", nir.LI(tau=np.full(4, 4e-3, np.float32), r=np.full(4, 3.0, np.float32),
                           v_leak=np.zeros(4, np.float32))))
    return _chain(*nodes, in_shape=(2, 4, 4), out_shape=(4,))


def _partial_flatten(start: int = 1, end: int = -1) -> nir.NIRGraph:
    """Conv2d -> Flatten of part of the maps (``[3, 4, 4] -> [3, 16]`` for ``start_dim = 1``) -> IF -> Flatten ->
    Affine -> LIF."""
    conv = nir.Conv2d(input_shape=(4, 4), weight=_RNG.normal(0.3, 0.5, (3, 2, 3, 3)).astype(np.float32), stride=1,
                      padding=1, dilation=1, groups=1, bias=np.zeros(3, np.float32))
    ones = np.ones(torch.zeros(3, 4, 4).flatten(start, end).shape, np.float32)
    nodes = (("conv", conv), ("rows", nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=start,
                                                  end_dim=end)),
             ("if", nir.IF(r=ones / DT, v_threshold=ones, v_reset=0 * ones)),
             ("flat", nir.Flatten(input_type={"input": np.array(ones.shape)}, start_dim=0, end_dim=-1)),
             ("fc", nir.Affine(weight=_RNG.normal(0.1, 0.3, (N, 48)).astype(np.float32), bias=np.zeros(N, np.float32))),
             ("spk", _uniform_lif()))
    return _chain(*nodes, in_shape=(2, 4, 4), out_shape=(N,))


GRAPHS = {
    "conv_if": tiny_graph,
    "per_neuron_lif": lambda: _chain(("fc", nir.Affine(weight=_W, bias=_B)), ("spk", _per_neuron_lif("v > th"))),
    "per_neuron_cuba": lambda: _chain(("fc", nir.Affine(weight=_W, bias=_B)), ("spk", _per_neuron_cuba())),
    "lif_with_gain": lambda: _chain(("fc", nir.Linear(weight=_W)), ("spk", _uniform_lif())),
    "recurrent": _recurrent,
    "branching": _branching,
    "pooled_conv_li": _pooled_conv,
    "partial_flatten": _partial_flatten,
}


def _spikes_in(net, steps: int = 150, batch: int = 3, seed: int = 5) -> torch.Tensor:
    return (torch.rand(steps, batch, *net.input_shape, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


@pytest.mark.parametrize("name", GRAPHS)
def test_an_imported_net_written_back_runs_as_before(name, tmp_path):
    net = from_nir(GRAPHS[name]())
    x = _spikes_in(net)
    with torch.no_grad():
        before = net(x)
        path = write_nir(to_nir(net), tmp_path / "again.nir")
        again = from_nir(path)
        after = again(x)
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x})["output"].float()
    if name == "pooled_conv_li":  # a membrane trace: its decay read back from a float32 tau (1 - dt/tau), and the
        # simulator's in float64
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(simulated, before, rtol=1e-5, atol=1e-5)
    else:
        assert 0.02 * before.numel() < before.sum() < 0.98 * before.numel()
        assert torch.equal(after, before)
        assert torch.equal(simulated, before)
    assert again.metadata["dt"] == pytest.approx(DT if name != "conv_if" else net.metadata["dt"])


@pytest.mark.parametrize(("start", "end"), [(1, -1), (-2, 2), (0, 1)])
def test_an_imported_flatten_of_part_of_the_sample_is_written_back_as_read(start, end, tmp_path):
    """to_nir refused an imported Flatten with start_dim 1 ("only Flatten(start_dim=1) of the whole sample is
    supported", torch's numbering, where the batch is dim 0); now each NIR Flatten reads back with the dims it was
    read with (the file type-checked by nir.read) and runs as before (test_an_imported_net_written_back_runs_as_before
    for (1, -1))."""
    graph = _partial_flatten(start, end)
    net = from_nir(graph)
    path = write_nir(to_nir(net), tmp_path / "again.nir")
    nodes = nir.read(str(path)).nodes.values()
    flats = [(int(n.start_dim), int(n.end_dim)) for n in nodes if isinstance(n, nir.Flatten)]
    assert flats == [(start, end), (0, -1)]
    x = _spikes_in(net, steps=20)
    with torch.no_grad():
        assert torch.equal(from_nir(path)(x), net(x))


def test_a_flatten_that_would_merge_the_batch_is_refused_in_one_line():
    """Flatten(start_dim=0) merges the batch into the sample, NIR flattens one sample; Flatten(5) of a 3-D sample was
    an IndexError traceback ("Dimension out of range")."""
    for flatten, message in ((torch.nn.Flatten(0), r"Flatten\(start_dim=0, end_dim=-1\) would merge the batch"),
                             (torch.nn.Flatten(5), "layer Flatten does not take an input of shape \\[3, 4, 4\\] .*"
                                                   "Dimension out of range")):
        net = from_nir(_partial_flatten())
        net.body[1].module = flatten
        with pytest.raises(ConfigError, match=message):
            to_nir(net)


def test_an_imported_net_trained_in_torch_is_written_with_its_trained_weights(tmp_path):
    # the use it is for: read another tool's file, fine-tune it here (surrogate gradients through the imported
    # neurons), hand it back
    net = from_nir(GRAPHS["per_neuron_lif"]())
    x = _spikes_in(net, steps=40, batch=8)
    target = torch.tensor([2.0, 10.0, 4.0, 0.0, 6.0])
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    with torch.no_grad():
        first = float(((net(x).sum(0) - target) ** 2).mean())
    for _ in range(30):
        optimizer.zero_grad()
        loss = ((net(x).sum(0) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        tuned = net(x)
    assert float(((tuned.sum(0) - target) ** 2).mean()) < 0.5 * first
    graph = to_nir(net)
    assert not np.allclose(graph.nodes["0_affine"].weight, _W)
    assert np.array_equal(graph.nodes["0_affine"].weight, net.body[0].module.weight.detach().numpy())
    path = write_nir(graph, tmp_path / "tuned.nir")
    with torch.no_grad():
        assert torch.equal(from_nir(path)(x), tuned)
    assert torch.equal(GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x})["output"].float(), tuned)


def test_a_deepspike_file_read_and_written_back_scores_as_the_original(tiny_run, tmp_path):
    first = tmp_path / "run.nir"
    export(tiny_run, first)
    again = write_nir(to_nir(from_nir(first)), tmp_path / "again.nir")
    before, after = nir.read(str(first)).metadata, nir.read(str(again)).metadata
    for key in ("encoder", "timesteps", "decode", "dataset"):
        assert after[key] == before[key]
    assert evaluate_nir(again, "digits", limit=60) == {**evaluate_nir(first, "digits", limit=60), "nir": str(again)}


def test_folding_the_thresholds_of_per_neuron_and_branching_imports_is_one_line():
    with pytest.raises(ConfigError, match="this net has one per neuron: export it without folding"):
        to_nir(from_nir(GRAPHS["per_neuron_lif"]()), fold_thresholds=True)
    with pytest.raises(ConfigError, match="every branch of a branching graph; export it without folding"):
        to_nir(from_nir(GRAPHS["branching"]()), fold_thresholds=True)


def test_folding_the_one_threshold_of_an_imported_layer_keeps_its_spikes():
    net = from_nir(GRAPHS["lif_with_gain"]())
    x = _spikes_in(net)
    graph = to_nir(net, fold_thresholds=True)
    assert all(float(np.max(node.v_threshold)) == 1.0 for node in graph.nodes.values() if hasattr(node, "v_threshold"))
    with torch.no_grad():
        assert torch.equal(from_nir(graph)(x), net(x))


def test_a_net_that_is_not_imported_still_needs_its_input_shape():
    with pytest.raises(ConfigError, match="to_nir needs the input_shape of one time step"):
        to_nir(torch.nn.Sequential())


def test_an_imported_net_with_delay_nodes_is_written_back_without_round_delays(tmp_path):
    # before: to_nir(from_nir(file)) of a file with Delay nodes was refused "layer DelayedLinear has learnable synaptic
    # delays ... export with --round-delays", though from_nir builds each delay as a whole step (a one-hot kernel)
    net = create_model("dsnn", method="stbp", num_classes=4, input_shape=(N_IN,), timesteps=8, decay=0.8,
                       threshold=0.5, model_args={"hidden": [N], "delays": 3}).eval()
    for p in net.parameters():
        torch.nn.init.uniform_(p, 0.0, 0.6, generator=torch.Generator().manual_seed(p.numel()))
    imported = from_nir(to_nir(net, (N_IN,), dt=DT, round_delays=True))
    path = write_nir(to_nir(imported), tmp_path / "again.nir")
    x = _spikes_in(imported, steps=40)
    with torch.no_grad():
        before, after = imported(x), from_nir(path)(x)
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x})["output"].float()
    assert 0.02 * before.numel() < before.sum() < 0.98 * before.numel()
    assert torch.equal(after, before) and torch.equal(simulated, before)
    assert any(isinstance(node, nir.Delay) for node in nir.read(str(path)).nodes.values())


def test_an_imported_li_with_a_tau_per_neuron_is_written_back_as_read(tmp_path):
    # before: to_nir refused the net "layer PerNeuronIntegrator has no NIR mapping"; written now as an LI of array tau
    # (r = tau / dt, its gain the Scale node before it) whose float32 decays read back bit for bit: a tau rounded up
    # alone read back another decay for 3% of random tau (here 7 of 256 neurons)
    m = 256
    rng = np.random.default_rng(3)
    tau = (DT * np.exp(rng.uniform(0.0, 8.0, m))).astype(np.float32)
    li = nir.LI(tau=tau, r=rng.uniform(0.5, 4.0, m).astype(np.float32), v_leak=np.zeros(m, np.float32))
    net = from_nir(_chain(("fc", nir.Linear(weight=rng.normal(0.2, 0.5, (m, N_IN)).astype(np.float32))),
                          ("li", li), out_shape=(m,)))
    path = write_nir(to_nir(net), tmp_path / "again.nir")
    written = nir.read(str(path))
    again = from_nir(path)
    x = _spikes_in(net, steps=60)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
    node = next(n for n in written.nodes.values() if isinstance(n, nir.LI))
    read_decay = (1.0 - DT / tau.astype(np.float64)).astype(np.float32)
    assert np.array_equal((1.0 - DT / node.tau.astype(np.float64)).astype(np.float32), read_decay)
    assert np.array_equal(again.body[-1].decay.numpy(), read_decay)
    assert np.array_equal(node.v_leak, np.zeros(m, np.float32))
    scale = next(n for n in written.nodes.values() if isinstance(n, nir.Scale)).scale
    assert np.array_equal(scale, net.body[1].scale.numpy())  # r dt / tau of the file, as read
    twice = next(n for n in to_nir(again).nodes.values() if isinstance(n, nir.LI))
    assert np.array_equal(twice.tau, node.tau) and np.array_equal(twice.r, node.r)


@pytest.mark.parametrize("kind", ["lif", "cubalif"])
def test_a_per_neuron_layer_is_written_back_with_the_decays_it_was_read_with(kind):
    # before: the float32 taus, rounded up, read back another float32 decay for 13 of these 256 LIF neurons (41 of
    # the CubaLIF's synaptic decays), and a neuron whose tau reads as decay 1 was refused on export
    m = 256
    rng = np.random.default_rng(3)
    tau = (DT * np.exp(rng.uniform(0.01, 6.0, m))).astype(np.float32)
    tau[0] = DT * 1e9  # float32 decay 1.0
    zeros, th = np.zeros(m, np.float32), rng.uniform(0.3, 1.0, m).astype(np.float32)
    r = rng.uniform(0.5, 3.0, m).astype(np.float32)
    node = (nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=th, v_reset=zeros) if kind == "lif" else
            nir.CubaLIF(tau_syn=(DT * np.exp(rng.uniform(0.0, 3.0, m))).astype(np.float32), tau_mem=tau, r=r,
                        w_in=np.ones(m, np.float32), v_leak=zeros, v_threshold=th, v_reset=zeros))
    net = from_nir(_chain(("fc", nir.Linear(weight=rng.normal(0.3, 0.5, (m, N_IN)).astype(np.float32))),
                          ("spk", node), out_shape=(m,)))
    again = from_nir(to_nir(net))
    neurons = [next(x for x in n.body if hasattr(x, "syn_decay")) for n in (net, again)]
    assert float(neurons[0].decay[0]) == 1.0
    for name in ("decay", "threshold", "syn_decay"):
        first, second = (getattr(neuron, name) for neuron in neurons)
        assert (first is None and second is None) or torch.equal(first, second), name
    x = _spikes_in(net, steps=200)
    with torch.no_grad():
        out = net(x)
        assert 0.02 * out.numel() < out.sum() < 0.98 * out.numel()
        assert torch.equal(again(x), out)


def _li_readout(per_neuron: bool) -> nir.NIRGraph:
    """input -> Linear -> LI (one tau and r for the layer, or one per neuron) -> output."""
    tau = np.array([2e-3, 5e-3, 50e-3, 3e-3, 8e-3], np.float32) if per_neuron else np.full(N, 5e-3, np.float32)
    r = np.array([1.0, 2.0, 0.5, 1.5, 3.0], np.float32) if per_neuron else np.full(N, 2.0, np.float32)
    return _chain(("fc", nir.Linear(weight=_W)), ("li", nir.LI(tau=tau, r=r, v_leak=np.zeros(N, np.float32))))


@pytest.mark.parametrize("per_neuron", [False, True])
def test_graph_outputs_of_an_imported_li_readout_is_its_trace_integrated_once(per_neuron):
    # before: the imported body already ends in the LI, and graph_outputs integrated its trace again (largest
    # difference 6.8 on traces up to 2.6), the per-neuron LI's trace called spikes; evaluate, export --onnx of the
    # file and from_nir's own output were right (graph_outputs checks --onnx of runs and zoo nets, never imported)
    from deepspike.deploy.nir_export import graph_outputs

    graph = _li_readout(per_neuron)
    li = graph.nodes["li"]
    x = torch.rand(12, 3, N_IN, generator=torch.Generator().manual_seed(1))
    k, gain = (torch.tensor(v, dtype=torch.float64) for v in (1.0 - DT / li.tau.astype(np.float64),
                                                               li.r.astype(np.float64) * DT / li.tau))
    v, hand = torch.zeros(3, N, dtype=torch.float64), []
    for x_t in x.double() @ torch.tensor(_W, dtype=torch.float64).T:  # v_t = (1 - dt/tau) v_{t-1} + (r dt/tau) W x_t
        v = k * v + gain * x_t
        hand.append(v)
    hand = torch.stack(hand)
    net = from_nir(graph)
    ours, spiking = graph_outputs(net, x)
    assert not spiking
    torch.testing.assert_close(ours.double(), hand, rtol=1e-5, atol=1e-6 * float(hand.abs().max()))
    with torch.no_grad():
        torch.testing.assert_close(net(x).double(), hand, rtol=1e-5, atol=1e-6 * float(hand.abs().max()))


@pytest.mark.parametrize("name", ["conv_if", "per_neuron_cuba", "branching", "pooled_conv_li"])
def test_graph_outputs_of_an_imported_net_are_what_its_output_node_carries(name):
    # before: the output neurons ran again on their own spikes, a branching body (GraphBody) on its own output
    from deepspike.deploy.nir_export import graph_outputs

    graph = GRAPHS[name]()
    net = from_nir(graph)
    x = _spikes_in(net, steps=40)
    ours, spiking = graph_outputs(net, x)
    expected = GraphSimulator.rate_coded(graph).run({"input": x.double()})["output"]
    assert spiking == (name != "pooled_conv_li")
    if spiking:
        assert torch.equal(ours, expected.float()) and 0 < ours.sum() < ours.numel()
    else:
        torch.testing.assert_close(ours.double(), expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))


def test_a_per_neuron_integrator_is_written_with_tau_and_r_by_hand():
    """``v_t = k v_{t-1} + x_t`` with k = [0, 0.5, 0.75], dt = 1e-3: tau = dt / (1 - k) = [1, 2, 4] ms and r = tau / dt
    = [1, 2, 4] (so that r dt / tau = 1), v_leak 0."""
    node = per_neuron_integrator_node(nir, np.array([0.0, 0.5, 0.75]), (3,), 1e-3)
    np.testing.assert_allclose(node.tau, [1e-3, 2e-3, 4e-3], rtol=1e-6)
    np.testing.assert_allclose(node.r, [1.0, 2.0, 4.0], rtol=1e-6)
    assert node.v_leak.tolist() == [0.0, 0.0, 0.0]
