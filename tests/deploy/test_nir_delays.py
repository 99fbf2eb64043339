"""Learnable synaptic delays in NIR: a delayed layer rounded to whole steps is exported as one ``Delay -> Linear``
branch per delay (``to_nir(..., round_delays=True)``, ``deepspike export --round-delays``), simulated by
``GraphSimulator`` and read back by ``from_nir`` as a ``DelayedLinear``, all spike for spike with the rounded PyTorch
net; a hand-worked 2-input layer; the file written and read back; one-line refusals."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import deepspike as ds
from deepspike.cli import main
from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.deploy import conformance
from deepspike.deploy.families import reference_spikes
from deepspike.layers.delays import DelayedLinear, round_all_delays_
from deepspike.layers.readout import MembraneReadout, SpikeRateReadout
from deepspike.methods.rate_network import RateNetwork
from deepspike.neurons.modules import LIF

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, from_nir, to_nir, write_nir  # noqa: E402

T, B, F = 30, 3, 6
DT = 1e-3


def _net(delays: int, bias: bool, seed: int = 0) -> RateNetwork:
    """Two delayed layers, DelayedLinear(6, 8, D) -> LIF -> DelayedLinear(8, 4, D) -> LIF (readout), positions NOT
    on whole steps (the trained layer's Gaussian spreads each weight: the export rounds them)."""
    torch.manual_seed(seed)
    first, second = DelayedLinear(F, 8, delays, bias=bias), DelayedLinear(8, 4, delays, bias=bias)
    with torch.no_grad():
        for layer in (first, second):
            layer.weight.normal_(1.2 / layer.in_features, 0.8 / layer.in_features ** 0.5)
            if bias:
                layer.bias.uniform_(-0.05, 0.1)
            layer.sigma.fill_(0.3)
    body = nn.Sequential(first, LIF(decay=0.8, threshold=0.4, reset="subtract"), second)
    return RateNetwork(nn.Identity(), body, SpikeRateReadout(LIF(decay=0.8, threshold=0.4)), timesteps=T).eval()


def _rounded(net: nn.Module) -> nn.Module:
    net = copy.deepcopy(net)
    assert round_all_delays_(net) == 2
    return net


def _inputs(seed: int = 1) -> torch.Tensor:
    return (torch.rand(T, B, F, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


@pytest.mark.parametrize("delays", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("bias", [False, True])
def test_the_simulated_graph_gives_the_rounded_nets_spikes(delays, bias):
    net, x = _net(delays, bias), _inputs()
    graph = to_nir(net, (F,), dt=DT, round_delays=True)
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    distinct = [np.unique(m.discrete_delays().numpy()) for m in net.modules() if isinstance(m, DelayedLinear)]
    assert kinds.count("Delay") == sum(int((d > 0).sum()) for d in distinct)  # one branch per distinct delay
    assert kinds.count("Linear") + kinds.count("Affine") == sum(len(d) for d in distinct)
    assert kinds.count("Affine") == (2 if bias else 0)  # the bias rides on one branch per layer
    ours = reference_spikes(_rounded(net), x)
    simulator = GraphSimulator.rate_coded(graph)
    simulated = simulator.run({"input": x})["output"].float()
    simulator.reset()
    pieces = torch.cat([simulator.run({"input": x[:7]})["output"], simulator.run({"input": x[7:]})["output"]])
    assert ours.sum() > 20 and torch.equal(simulated, ours) and torch.equal(pieces.float(), ours)
    if delays > 1:
        assert not torch.equal(reference_spikes(net, x), ours)  # the trained (unrounded) net differs: rounding bites


def test_folded_thresholds_scale_every_branch():
    net, x = _net(4, True), _inputs()
    graph = to_nir(net, (F,), dt=DT, round_delays=True, fold_thresholds=True)
    assert graph.metadata["thresholds_folded"] and graph.metadata["delays_rounded"]
    assert torch.equal(GraphSimulator.rate_coded(graph).run({"input": x})["output"].float(),
                       reference_spikes(_rounded(net), x))


def _hand_net() -> RateNetwork:
    """A 2-input, 1-output layer with weights (0.5, 2.0) and delays (0, 2) steps, read out as its current (a
    membrane readout with decay 0: ``LI`` with ``tau = dt``, whose membrane is the step's input)."""
    layer = DelayedLinear(2, 1, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 2.0]]))
        layer.position.copy_(torch.tensor([[0.2, 1.8]]))  # rounds to (0, 2)
    return RateNetwork(nn.Identity(), nn.Sequential(layer), MembraneReadout(decay=0.0), timesteps=5).eval()


def test_a_hand_worked_layer_with_delays_0_and_2():
    graph = to_nir(_hand_net(), (2,), dt=DT, round_delays=True)
    assert list(graph.nodes) == ["input", "0_linear", "1_delay", "2_linear", "3_li", "output"]
    assert sorted(graph.edges) == sorted([("input", "0_linear"), ("input", "1_delay"), ("1_delay", "2_linear"),
                                          ("0_linear", "3_li"), ("2_linear", "3_li"), ("3_li", "output")])
    np.testing.assert_array_equal(graph.nodes["0_linear"].weight, [[0.5, 0.0]])
    np.testing.assert_array_equal(graph.nodes["2_linear"].weight, [[0.0, 2.0]])
    np.testing.assert_allclose(graph.nodes["1_delay"].delay, [2 * DT, 2 * DT], rtol=1e-6)
    assert graph.nodes["1_delay"].metadata == {"delay_steps": 2, "dt": DT, "delays_rounded": True}
    x = torch.tensor([[1, 1], [0, 1], [0, 0], [1, 0], [0, 0], [0, 0]], dtype=torch.float32)[:, None]  # [6, 1, 2]
    # y_t = 0.5 x0_t + 2 x1_{t-2}: 0.5, 0, 2 (x1_0), 0.5 + 2 (x0_3, x1_1), 0, 0
    expected = torch.tensor([0.5, 0.0, 2.0, 2.5, 0.0, 0.0])[:, None, None]
    simulated = GraphSimulator.rate_coded(graph).run({"input": x})["output"]
    with torch.no_grad():
        imported = from_nir(graph)(x)
    torch.testing.assert_close(simulated.float(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(imported, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bias", [False, True])
def test_from_nir_rebuilds_the_delayed_layers(bias):
    net, x = _net(5, bias), _inputs(seed=2)
    rounded = _rounded(net)
    imported = from_nir(to_nir(net, (F,), dt=DT, round_delays=True))
    layers = [m for m in imported.modules() if isinstance(m, DelayedLinear)]
    originals = [m for m in rounded.modules() if isinstance(m, DelayedLinear)]
    assert len(layers) == 2
    for got, want in zip(layers, originals):
        nonzero = want.weight != 0
        torch.testing.assert_close(got.weight, want.weight, rtol=0, atol=0)
        assert torch.equal(got.discrete_delays()[nonzero], want.discrete_delays()[nonzero])
        assert (got.bias is None) == (not bias) and (not bias or torch.equal(got.bias, want.bias))
    with torch.no_grad():
        assert torch.equal(imported(x), reference_spikes(rounded, x))


def test_the_file_keeps_every_branch_delay_and_note(tmp_path):
    net, x = _net(4, True), _inputs()
    graph = to_nir(net, (F,), dt=DT, round_delays=True)
    path = write_nir(graph, tmp_path / "d.nir")
    back = nir.read(str(path))
    assert sorted(back.nodes) == sorted(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    assert back.metadata["delays_rounded"] and float(back.metadata["dt"]) == DT
    for name, node in graph.nodes.items():
        assert type(back.nodes[name]) is type(node)
        for key in ("weight", "bias", "delay"):
            if hasattr(node, key):
                np.testing.assert_array_equal(getattr(back.nodes[name], key), getattr(node, key))
        if isinstance(node, nir.Delay):
            assert int(back.nodes[name].metadata["delay_steps"]) == int(node.metadata["delay_steps"]) > 0
    ours = reference_spikes(_rounded(net), x)
    with torch.no_grad():
        assert torch.equal(from_nir(path)(x), ours)  # deepspike's own (hostile-file) reader
    assert torch.equal(GraphSimulator.rate_coded(back).run({"input": x})["output"].float(), ours)


def test_a_delayed_net_is_refused_without_the_option_in_one_line():
    with pytest.raises(ConfigError, match=r"round_delays=True") as err:
        to_nir(_net(3, False), (F,))
    assert "\n" not in str(err.value) and "--round-delays" in str(err.value)
    plain = RateNetwork(nn.Identity(), nn.Sequential(nn.Linear(F, 4)), SpikeRateReadout(LIF()), timesteps=2)
    plain = to_nir(plain, (F,), round_delays=True)
    assert "delays_rounded" not in plain.metadata  # a net without delays is exported as it is


def _graph(delay_seconds: float, into: str = "linear"):
    """input [2] -> Delay -> Linear -> LIF -> output (``into="lif"``: the Delay feeds the LIF, no Linear after it)."""
    ones = np.ones(2, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "delay": nir.Delay(delay=np.full(2, delay_seconds, np.float32)),
             "linear": nir.Linear(weight=np.eye(2, dtype=np.float32)),
             "lif": nir.LIF(tau=ones * 2 * DT, r=ones * 2, v_leak=0 * ones, v_threshold=ones * 0.5, v_reset=0 * ones),
             "output": nir.Output(output_type={"output": np.array([2])})}
    if into == "lif":
        del nodes["linear"]
    edges = [("input", "delay"), *([("delay", "lif")] if into == "lif" else [("delay", "linear"), ("linear", "lif")]),
             ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}, type_check=False)


def test_delays_that_are_not_whole_steps_are_refused_in_one_line():
    for make in (lambda g: from_nir(g), lambda g: GraphSimulator.rate_coded(g)):
        with pytest.raises(ConfigError, match=r"delay of 0.0015 s is not a whole number of steps") as err:
            make(_graph(1.5 * DT))
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="must be finite and >= 0"):
        GraphSimulator.rate_coded(_graph(-DT))
    x = torch.zeros(4, 1, 2)
    x[0, 0, 0] = 1.0
    assert from_nir(_graph(2 * DT))(x)[:, 0, 0].tolist() == [0, 0, 1, 0]  # one branch, delay 2: a DelayedLinear
    with pytest.raises(ConfigError, match="Delay node 'delay' is not a branch of a delayed layer"):
        from_nir(_graph(DT, into="lif"))
    assert GraphSimulator.rate_coded(_graph(DT, into="lif")).run({"input": x})["output"][:, 0, 0].tolist() == [
        0, 1, 0, 0]  # the simulator runs a Delay node anywhere


def test_a_delay_longer_than_any_buffer_we_keep_is_refused_by_both_readers():
    """1e4 s at dt = 1e-3 is 1e7 steps: the simulator's delay buffer was allocated (a sweep's 1e8 asked for 6.4 GB)."""
    for make in (lambda g: from_nir(g), lambda g: GraphSimulator.rate_coded(g)):
        with pytest.raises(ConfigError, match=r"a delay of 1e\+07 steps of dt = 0.001 s; this reader runs delays of "
                                              r"at most 1023 steps$"):
            make(_graph(1e4))
    with pytest.raises(ConfigError, match="at most 1023 steps"):
        from_nir(_graph(1024 * DT))


def test_the_simulator_checks_shapes_before_running():
    """A Linear taking 5 features after a 4-value input reached torch's matmul on the first step."""
    graph = _graph(DT)
    graph.nodes["linear"] = nir.Linear(weight=np.ones((2, 5), np.float32))
    with pytest.raises(DataCorruptError, match=r"^NIR simulation: node 'linear': weight \[2, 5\] does not take"):
        GraphSimulator.rate_coded(graph)


def test_a_synapse_on_two_delays_is_refused_on_import():
    graph = to_nir(_hand_net(), (2,), dt=DT, round_delays=True)
    graph.nodes["2_linear"].weight = np.array([[0.3, 2.0]], np.float32)  # input 0 also arrives 2 steps late
    with pytest.raises(ConfigError, match="has weight on two delays"):
        from_nir(graph)


ROWS = ["method.name=stbp", "method.timesteps=8", "method.encoder=frames", "model.name=dsnn", "model.args.hidden=[16]",
        "model.args.delays=4", "data.name=digits_rows", "train.epochs=1", "train.max_steps_per_epoch=2",
        "train.progress=false"]


@pytest.fixture(scope="module")
def delayed_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("delays") / "run"
    ds.train(None, run, ROWS)
    return run


def test_export_round_delays_writes_the_rounded_run(delayed_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", str(delayed_run), "--nir", str(tmp_path / "a.nir")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--round-delays" in err and not (tmp_path / "a.nir").exists()
    assert main(["export", str(delayed_run), "--nir", str(tmp_path / "d.nir"), "--round-delays"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metadata"]["delays_rounded"] is True and any(n.endswith(":Delay") for n in summary["nodes"])
    _, parts = ds.load_run(delayed_run, device="cpu")
    x = (torch.rand(8, 4, 8, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    rounded = _rounded(parts.model)
    with torch.no_grad():
        assert torch.equal(from_nir(tmp_path / "d.nir")(x), reference_spikes(rounded, x))


def test_check_compares_the_tools_with_the_rounded_net(delayed_run, monkeypatch):
    def load(graph, dt, steps, batch):
        return lambda x: GraphSimulator.rate_coded(graph, dt).run({"input": x})["output"].float()

    monkeypatch.setattr(conformance, "installed", lambda: ["exact"])
    monkeypatch.setattr(conformance, "version", lambda tool: "0")
    monkeypatch.setitem(conformance.TOOLS, "exact", SimpleNamespace(load=load))
    result = ds.export(delayed_run, check=True, steps=60, round_delays=True)["check"]["tools"]["exact"]
    assert result["equal"] and result["spikes_ours"] > 0
    with pytest.raises(ConfigError, match="--round-delays"):
        ds.export(delayed_run, check=True, steps=60)
    _, parts = ds.load_run(delayed_run, device="cpu")
    x = conformance.sample_spikes((8,), 60)
    assert not torch.equal(reference_spikes(parts.model, x), reference_spikes(_rounded(parts.model), x))  # it bites


def test_round_delays_on_a_run_without_delays_is_refused(tiny_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--nir", str(tmp_path / "m.nir"), "--round-delays"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no synaptic delays to round" in err


def test_a_residual_block_whose_body_ends_in_a_delayed_layer_keeps_every_branch():
    from deepspike.layers.containers import ResidualBlock
    from deepspike.layers.time_distributed import TimeDistributed

    torch.manual_seed(0)
    delayed = DelayedLinear(F, 6, 4, bias=True)
    with torch.no_grad():
        delayed.weight.normal_(0.3, 0.2)
        delayed.position.copy_(torch.randint(0, 4, (6, F)).float())  # several distinct whole-step delays
    shortcut = TimeDistributed(nn.Linear(F, 6))
    with torch.no_grad():
        shortcut.module.weight.normal_(0.2, 0.2)
    block = ResidualBlock(nn.Sequential(delayed), nn.Sequential(shortcut), LIF(decay=0.8, threshold=0.5))
    body = nn.Sequential(block, TimeDistributed(nn.Linear(6, 3)))
    net = RateNetwork(nn.Identity(), body, SpikeRateReadout(LIF(decay=0.8, threshold=0.3)), timesteps=T).eval()
    x = _inputs()
    graph = to_nir(net, (F,), dt=DT, round_delays=True)
    simulated = GraphSimulator.rate_coded(graph).run({"input": x})["output"].float()
    ours = reference_spikes(_rounded_copy(net), x)
    assert ours.sum() > 0 and torch.equal(simulated, ours)


def test_the_recipes_delayed_net_with_batch_norm_exports(tmp_path, capsys):
    run = tmp_path / "bn"
    ds.train(None, run, ["method.name=stbp", "method.timesteps=8", "method.encoder=frames", "method.norm=bn",
                         "method.readout=rate",
                         "model.name=dsnn", "model.args.hidden=[16]", "model.args.delays=4",
                         "model.args.batch_norm=true", "data.name=digits_rows", "train.epochs=1",
                         "train.max_steps_per_epoch=2", "train.progress=false"])
    capsys.readouterr()
    assert main(["export", str(run), "--nir", str(tmp_path / "bn.nir"), "--round-delays"]) == 0
    _, parts = ds.load_run(run, device="cpu")
    net = _rounded_copy(parts.model)
    x = (torch.rand(8, 2, 8, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    simulated = GraphSimulator.rate_coded(nir.read(str(tmp_path / "bn.nir"))).run({"input": x})["output"].float()
    assert torch.equal(simulated, reference_spikes(net, x))  # the batch-norm folded into the delayed layer, exactly


def _rounded_copy(net: nn.Module) -> nn.Module:
    net = copy.deepcopy(net).eval()
    round_all_delays_(net)
    return net
