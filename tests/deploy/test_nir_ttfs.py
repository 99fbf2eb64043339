"""NIR export of TTFS nets: the exported graph, simulated step by step from the graph alone, fires when the
closed form says (both kernels, dense and conv nets with bias spikes and both poolings).

Tolerance (used by ``_upper_bound``), for nonnegative weights (the layers' U(0, 8/fan_in) init):
* input spikes are moved up to the next grid point (``ceil(t/dt)``): late by less than ``dt``;
* the simulator integrates the NIR ODEs exactly between steps and reports a crossing at the end of the
  step (a CubaLIF layer adds less than ``dt``; the earliest-spike pool's IF adds nothing);
* the finite time constants only lower V: ``V_ideal(t) / kappa <= V_nir(t) <= V_ideal(t)`` for t <= T
  (``ttfs_nodes``), so a NIR neuron fires no earlier than the ideal one and no later than the ideal one
  with threshold ``kappa * theta``;
* with nonnegative weights every spike time is nondecreasing in every input time, so delays propagate
  monotonically. Hence ``t_closed <= t_nir <= upper``, where ``upper`` re-runs the closed form layer by
  layer on the grid-rounded inputs with ``theta * kappa`` and adds ``dt`` after every neuron layer:
  ``|t_nir - t_closed| <= (neuron layers + 1) dt + leak``.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.coding.ttfs_input import TTFSInput
from deepspike.core.errors import ConfigError
from deepspike.methods.ttfs_network import TTFSNetwork
from deepspike.ttfs import spike_times, spike_times_conv2d
from deepspike.ttfs.batchnorm import TTFSBatchNorm
from deepspike.ttfs.layers import TTFSAvgPool2d, TTFSConv2d, TTFSLinear, TTFSMaxPool2d

nir = pytest.importorskip("nir")
from deepspike.deploy import (  # noqa: E402
    GraphSimulator,
    check_finite,
    from_nir,
    read_nir,
    to_nir,
    to_nir_ttfs,
    ttfs_graph_times,
    ttfs_replay,  # noqa: E402
    write_nir,
)
from deepspike.deploy.ttfs_nodes import (  # noqa: E402
    earliest_spike_node,
    leak_factor,
    reset_potential,
    ttfs_neuron_node,
)


def _net(kernel: str, conv: bool, seed: int = 0) -> TTFSNetwork:
    torch.manual_seed(seed)
    if conv:  # 8x8 -> conv(pad 1) 3x8x8 -> earliest-spike pool 3x4x4 -> conv 4x2x2 -> avg pool 4x1x1 -> 3
        body = nn.Sequential(TTFSConv2d(1, 3, 3, padding=1, kernel=kernel), TTFSMaxPool2d(2),
                             TTFSConv2d(3, 4, 3, kernel=kernel), TTFSAvgPool2d(2, kernel=kernel), nn.Flatten(),
                             TTFSLinear(4, 3, kernel=kernel))
    else:
        body = nn.Sequential(nn.Flatten(), TTFSLinear(16, 12, kernel=kernel), TTFSLinear(12, 5, kernel=kernel))
    return TTFSNetwork(TTFSInput(), body.double()).eval()


def _padded_net(seed: int = 0) -> TTFSNetwork:
    """relpsp: conv 3x8x8 -> earliest spike 3x3/s2/p1 3x4x4 -> conv 4x2x2 -> avg neuron 3x3/s2/p1 4x1x1 -> 3."""
    torch.manual_seed(seed)
    kw = dict(kernel="relpsp")
    body = nn.Sequential(TTFSConv2d(1, 3, 3, padding=1, **kw), TTFSMaxPool2d(3, 2, padding=1),
                         TTFSConv2d(3, 4, 3, **kw), TTFSAvgPool2d(3, 2, padding=1, **kw), nn.Flatten(),
                         TTFSLinear(4, 3, **kw))
    return TTFSNetwork(TTFSInput(), body.double()).eval()


def _times(shape, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = 3.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    t[0].view(-1)[:3] = math.inf  # a few silent inputs
    return t


def _upper_bound(body: nn.Sequential, t_in: torch.Tensor, dt: float, kappa: float) -> torch.Tensor:
    """Closed form on grid-rounded inputs, threshold ``kappa * theta``, ``+dt`` per neuron layer (docstring)."""
    t = torch.ceil(t_in / dt - 1e-9) * dt
    for m in body:
        if isinstance(m, TTFSLinear):
            t = spike_times(t, m.weight, m.bias, m.kernel, m.theta * kappa, m.tau) + dt
        elif isinstance(m, TTFSConv2d):
            t = spike_times_conv2d(t, m.weight, m.bias, m.stride, m.padding, m.kernel, m.theta * kappa, m.tau) + dt
        elif isinstance(m, TTFSAvgPool2d):  # the pooling neuron itself: weights theta/(N-1) on its window
            b, c, h, w = t.shape
            k = m.kernel_size
            weight = torch.full((1, 1, k, k), m.theta / (k * k - 1), dtype=t.dtype)
            out = spike_times_conv2d(t.reshape(b * c, 1, h, w), weight, None, m.stride, getattr(m, "padding", 0),
                                     m.kernel, m.theta * kappa, m.tau)
            t = out.reshape(b, c, out.shape[2], out.shape[3]) + dt
        else:  # earliest-spike pool (exact in NIR), flatten
            t = m(t)
    return t


@pytest.mark.parametrize("kernel, conv", [("exp", False), ("relpsp", False), ("exp", True), ("relpsp", True),
                                          ("relpsp", "padded")])
def test_nir_simulation_brackets_closed_form_times(kernel, conv):
    if conv == "padded" and "padding" not in inspect.signature(TTFSMaxPool2d).parameters:
        pytest.skip("TTFS pools without padding")
    model = _padded_net() if conv == "padded" else _net(kernel, conv)
    t_in = _times((4, 1, 8, 8) if conv else (6, 1, 4, 4))
    with torch.no_grad():
        closed = model.body(t_in)
        t_end = float(closed[torch.isfinite(closed)].max()) + 0.5
        dt, large = 5e-3, 1e3  # a small 'large' so that the leak term is visible and tested
        graph = to_nir_ttfs(model, t_in.shape[1:], large=large)
        t_nir = ttfs_graph_times(graph, t_in, dt, t_end)
        upper = _upper_bound(model.body, t_in, dt, leak_factor(kernel, 1.0, large, t_end))
    assert torch.isfinite(closed).sum() >= closed.numel() - 1  # the comparison is not vacuous
    assert torch.equal(torch.isinf(t_nir), torch.isinf(closed))
    fin = torch.isfinite(closed)
    assert (t_nir[fin] >= closed[fin] - 1e-9).all()
    assert (t_nir[fin] <= upper[fin] + 1e-9).all()
    layers = 4 if conv else 2  # CubaLIF layers
    err = (t_nir - closed)[fin]
    assert err.max() <= (layers + 1) * dt + float((upper - closed)[fin].max())
    assert err.max() > 0  # the grid and leak really delay spikes: the bracket is not trivially met


@pytest.mark.parametrize("kernel", ["exp", "relpsp"])
def test_default_large_error_is_within_a_few_steps(kernel):
    model = _net(kernel, conv=False, seed=2)
    t_in = _times((6, 1, 4, 4), seed=3)
    with torch.no_grad():
        closed = model.body(t_in)
    dt = 2e-3
    t_nir = ttfs_graph_times(to_nir_ttfs(model, (1, 4, 4)), t_in, dt, float(closed.max()) + 0.5)
    # default large = 1e6, T < 5: kappa - 1 < 1e-5, far below dt; 2 CubaLIF layers + input rounding -> 3 dt
    assert (t_nir - closed).abs().max() <= 3 * dt
    assert (t_nir - closed).abs().max() >= dt / 2


def test_single_neuron_golden_time():
    # exp neuron, tau = theta = 1, one input spike of weight 2 at t = 0 (here: only the bias spike):
    # V(t) = 2 (1 - e^{-t}) = 1 at t = ln 2 = 0.6931; on a 0.1 grid the first V > 1 is at t = 0.7
    lin = TTFSLinear(1, 1, bias=True).double()
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.fill_(2.0)
    graph = to_nir_ttfs(nn.Sequential(lin), (1,))
    t_in = torch.tensor([[math.inf]], dtype=torch.float64)
    assert float(spike_times(t_in, lin.weight.detach(), lin.bias.detach())) == pytest.approx(math.log(2), abs=1e-12)
    assert float(ttfs_graph_times(graph, t_in, 0.1, 2.0)) == pytest.approx(0.7, abs=1e-12)


@pytest.mark.parametrize(("t_end", "chunk_steps", "message"), [
    (-1.0, None, r"t_end = -1.0 must be a finite number >= 0"),  # simulated no step and returned None
    (math.nan, None, r"t_end = nan must be a finite number >= 0"),  # a ValueError from floor(nan)
    (2.0, -3, r"chunk_steps = -3 must be a whole number >= 1"),  # an empty range(0, n, -3): None
])
def test_a_replay_that_would_simulate_nothing_is_refused(t_end, chunk_steps, message):
    lin = TTFSLinear(1, 1, bias=True).double()
    graph = to_nir_ttfs(nn.Sequential(lin), (1,))
    with pytest.raises(ConfigError, match=rf"^TTFS replay: {message}"):
        ttfs_graph_times(graph, torch.tensor([[math.inf]], dtype=torch.float64), 0.1, t_end, chunk_steps)


def test_a_replay_of_more_grid_steps_than_the_cap_is_refused_before_it_runs(monkeypatch):
    """dt = 1e-12 over t_end = 2 is 2e12 steps: it ran for hours instead of asking for a larger dt."""
    lin = TTFSLinear(1, 1, bias=True).double()
    graph = to_nir_ttfs(nn.Sequential(lin), (1,))
    t_in = torch.tensor([[math.inf]], dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"^TTFS replay: t_end / dt = 2.0 / 1e-12 is 2,000,000,000,000 steps, above "
                                          r"1,000,000; use a larger dt$"):
        ttfs_graph_times(graph, t_in, 1e-12, 2.0)
    monkeypatch.setattr(ttfs_replay, "MAX_REPLAY_STEPS", 20)  # t_end / dt = 20 steps after step 0: at the cap
    assert ttfs_graph_times(graph, t_in, 0.1, 2.0).shape == (1, 1)
    with pytest.raises(ConfigError, match=r"is 21 steps, above 20;"):
        ttfs_graph_times(graph, t_in, 0.1, 2.1)


@pytest.mark.parametrize(("t_in", "metadata", "message"), [
    (torch.zeros(2, 5), {}, r"t_in must be a tensor \[B, 4\] of input spike times, got \(2, 5\)"),  # RuntimeError
    (torch.zeros(4), {}, r"t_in must be a tensor \[B, 4\] of input spike times, got \(4,\)"),  # RuntimeError
    (np.zeros((2, 4)), {}, r"t_in must be a tensor \[B, 4\] of input spike times, got ndarray"),  # TypeError
    (torch.zeros(2, 4, dtype=torch.complex64), {},  # NotImplementedError: "lt_cpu" not implemented for 'ComplexFloat'
     r"t_in must be a tensor \[B, 4\] of input spike times, got \(2, 4\) torch.complex64"),
    (torch.zeros(2, 4), {"bias_inputs": "bias_1,bias_9"},  # a KeyError
     r"the metadata's spike_input / bias_inputs name \['bias_9'\], which are not Input nodes"),
    (torch.zeros(2, 4), {"t_window": "soon"}, r"the graph's t_window = 'soon' is not a number"),  # a ValueError
    (torch.zeros(2, 4), {"t_window": math.nan}, r"the graph's t_window = nan is not a number"),  # ran past the bound
])
def test_replay_inputs_and_metadata_that_do_not_fit_the_graph_are_one_line_errors(t_in, metadata, message):
    graph = to_nir_ttfs(nn.Sequential(TTFSLinear(4, 3, bias=True).double()), (4,))
    graph.metadata.update(metadata)
    with pytest.raises(ConfigError, match=rf"^TTFS replay: {message}"):
        ttfs_graph_times(graph, t_in, 0.1, 2.0)


def test_a_format_that_is_not_text_is_not_a_ttfs_graph():
    # an array (a hand-written or damaged file) ended in numpy's "truth value of an array ... is ambiguous"
    graph = to_nir_ttfs(nn.Sequential(TTFSLinear(4, 3, bias=True).double()), (4,))
    graph.metadata["format"] = np.array(["ttfs", "ttfs"], dtype=object)
    with pytest.raises(ConfigError, match=r"^TTFS replay needs a graph written by to_nir_ttfs \(metadata format: "):
        ttfs_graph_times(graph, torch.zeros(2, 4), 0.1, 2.0)


def test_cubalif_parameters_follow_the_nir_equations():
    # exp: tau = 2, theta = 1.5, large = 1e3 -> tau_syn = 2, tau_mem = 2000, w_in = 2, r = 2000 / 2 = 1000
    node = ttfs_neuron_node("exp", 1.5, 2.0, (3,), drive=3.0, large=1e3, t_window=100.0)
    for key, value in dict(tau_syn=2.0, tau_mem=2000.0, w_in=2.0, r=1000.0, v_leak=0.0, v_threshold=1.5).items():
        np.testing.assert_allclose(getattr(node, key), value, rtol=1e-7)
    # v_reset = -2 (theta + drive) e^{t_window / tau_mem} = -2 * 4.5 * e^{0.05} = -9.46143
    np.testing.assert_allclose(node.v_reset, -9.461433, rtol=1e-6)
    relpsp = ttfs_neuron_node("relpsp", 1.0, 1.0, (2,), drive=0.5, large=1e3, t_window=10.0)
    for key, value in dict(tau_syn=1000.0, tau_mem=1000.0, w_in=1000.0, r=1000.0).items():
        np.testing.assert_allclose(getattr(relpsp, key), value, rtol=1e-7)
    # -2 (theta + drive * t_window) e^{10/1000} = -2 * 6 * 1.01005 = -12.1206
    assert reset_potential("relpsp", 1.0, 1.0, 0.5, 1e3, 10.0) == pytest.approx(-12.12060, rel=1e-6)
    # NIR equations solved by hand for one Dirac of weight w at 0: I = (w_in w / ts) e^{-t/ts},
    # V = (r/tm)(w_in w/ts) int_0^t e^{-(t-u)/tm} e^{-u/ts} du; ideal exp kernel: w (1 - e^{-t/2})
    t, w = np.linspace(0.1, 20, 50), 0.7
    ts, tm = 2.0, 2000.0
    v_nir = 1000 / tm * (2 * w / ts) * ts * tm / (tm - ts) * (np.exp(-t / tm) - np.exp(-t / ts))
    v_ideal = w * (1 - np.exp(-t / 2))
    kappa = leak_factor("exp", 2.0, 1e3, 20.0)
    assert (v_nir <= v_ideal).all() and (v_nir >= v_ideal / kappa).all()
    assert np.abs(v_nir / v_ideal - 1).max() > 1e-4  # the leak is there (large = 1e3), and bounded


def test_a_window_of_thousands_of_membrane_time_constants_is_refused_in_one_line():
    """export --t-window 1e6 --large 2: math.exp overflowed (an OverflowError traceback, exit 1)."""
    with pytest.raises(ConfigError, match=r"t_window / tau_mem = 5e\+05 makes exp\(\) overflow"):
        ttfs_neuron_node("exp", 1.0, 1.0, (2,), drive=1.0, large=2.0, t_window=1e6)
    with pytest.raises(ConfigError, match="makes exp\\(\\) overflow"):
        leak_factor("relpsp", 1.0, 2.0, 1e300)


@pytest.mark.parametrize(("large", "t_window", "field"), [(1e300, 100.0, "tau_mem"), (1 + 1e-12, 100.0, "v_reset")])
def test_constants_past_float32_are_refused_in_one_line_naming_the_options(large, t_window, field):
    """--large 1e300 (tau_mem) or 1 + 1e-12 (v_reset = -4 e^100) printed numpy's overflow warning, and the writer
    then refused the infinite field without naming --large."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=rf"^NIR TTFS export: {field} = .* is past float32's largest value .*"
                                              r"take a smaller --large or --t-window$"):
            ttfs_neuron_node("exp", 1.0, 1.0, (2,), drive=1.0, large=large, t_window=t_window)


def test_neurons_fire_once_only_thanks_to_v_reset():
    model = _net("relpsp", conv=False)
    graph = to_nir_ttfs(model, (1, 4, 4), t_window=20.0)
    t_in = _times((6, 1, 4, 4))
    steps = (torch.ceil(t_in / 0.02)).reshape(6, -1)  # [B, 16] grid steps, inf = silent

    def counts(g):
        sim = GraphSimulator(g, 0.02)
        x = torch.zeros(1000, 6, 16, dtype=torch.float64)  # 20 time units
        for b, n in zip(*torch.nonzero(torch.isfinite(steps), as_tuple=True)):
            x[int(steps[b, n]), b, n] = 1.0
        bias = [torch.zeros(1000, 6, 1, dtype=torch.float64) for _ in range(2)]
        for s in bias:
            s[0] = 1.0
        out = sim.run({"input": x.reshape(1000, 6, 1, 4, 4), "bias_1": bias[0], "bias_2": bias[1]})["output"]
        return out.sum(0)  # [B, 5] spikes per output neuron

    assert (counts(graph) == 1).all()  # every output fires, and once
    for node in graph.nodes.values():  # NIR's default reset to 0: positive weights make neurons fire again
        if isinstance(node, nir.CubaLIF):
            node.v_reset = np.zeros_like(node.v_reset)
    assert (counts(graph) > 1).all()


def test_file_round_trip_is_finite_and_described(tmp_path):
    model = _net("exp", conv=True)
    graph = to_nir_ttfs(model, (1, 8, 8), metadata={"method": "ttfs"})
    check_finite(graph)
    path = write_nir(graph, tmp_path / "ttfs.nir")
    back = read_nir(path)
    for name, node in back.nodes.items():  # our own scan: every float array and number is finite
        for key, value in vars(node).items():
            arr = np.asarray(value) if isinstance(value, np.ndarray | float) else None
            assert arr is None or arr.dtype.kind != "f" or np.isfinite(arr).all(), (name, key)
    kinds = sorted(type(n).__name__ for n in back.nodes.values())
    assert kinds.count("CubaLIF") == 4 and kinds.count("Input") == 4 and kinds.count("IF") == 1
    meta = {k: v.decode() if isinstance(v, bytes) else v for k, v in back.metadata.items()}
    assert meta["fire_once"] and meta["decode"] == "first_spike" and meta["kernel"] == "exp"
    assert meta["coding"] == "1-p" and meta["bias_inputs"] == "bias_1,bias_2,bias_3" and meta["method"] == "ttfs"
    assert sorted(back.nodes["bias_2"].input_type["input"]) == [1, 2, 2]  # [1, H', W'] of the second conv
    t_in = _times((2, 1, 8, 8))
    assert torch.equal(ttfs_graph_times(back, t_in, 0.01, 6.0), ttfs_graph_times(graph, t_in, 0.01, 6.0))


def test_a_file_with_an_average_pooling_neuron_is_read_by_the_nir_package(tmp_path):
    """The avg pool's conv was depthwise (groups = C, weight [C, 1, k, k]): NIR 1.0.8's own reader infers a Conv2d's
    input channels as weight.shape[1] and refused the file ("Type inference error: type mismatch: ... -> avgconv.input:
    [[1 2 2]]"); each channel now pools its own alone in a plain conv, spike times as the closed form's pool."""
    model = _net("relpsp", conv=True)
    graph = to_nir_ttfs(model, (1, 8, 8))
    back = nir.read(str(write_nir(graph, tmp_path / "ttfs.nir")))  # type-checked
    weight = back.nodes[next(k for k in back.nodes if k.endswith("avgconv"))].weight
    pool = model.body[3]
    expected = np.zeros((4, 4, 2, 2), np.float32)
    expected[range(4), range(4)] = pool.theta / 3.0  # theta / (N - 1), channel i from channel i
    assert np.array_equal(weight, expected)
    t_in = _times((2, 1, 8, 8))
    assert torch.equal(ttfs_graph_times(back, t_in, 0.01, 6.0), ttfs_graph_times(graph, t_in, 0.01, 6.0))


def test_unsupported_layers_and_misuse_are_refused():
    bn = TTFSNetwork(TTFSInput(), nn.Sequential(TTFSConv2d(1, 2, 3), TTFSBatchNorm(2))).eval()
    with pytest.raises(ConfigError, match="batch-norm"):
        to_nir_ttfs(bn, (1, 8, 8))
    model = _net("exp", conv=False)
    with pytest.raises(ConfigError, match="to_nir_ttfs"):
        to_nir(model, (1, 4, 4))
    with pytest.raises(ConfigError, match="TTFSLinear"):
        to_nir_ttfs(nn.Sequential(nn.Linear(3, 2)), (3,))
    for not_a_net in ("net.pt", None):  # before: AttributeError "'str' object has no attribute 'modules'"
        with pytest.raises(ConfigError, match="^NIR TTFS export needs TTFSLinear/TTFSConv2d layers; got "):
            to_nir_ttfs(not_a_net, (3,))
    graph = to_nir_ttfs(model, (1, 4, 4), t_window=10.0)
    with pytest.raises(ConfigError, match="t_window"):
        ttfs_graph_times(graph, _times((1, 1, 4, 4)), 0.1, 11.0)
    with pytest.raises(ConfigError, match="ttfs_graph_times"):
        from_nir(graph)


@pytest.mark.parametrize(("shape", "message"), [
    ((17,), r"input_shape \[17\] does not fit the net: TTFSLinear takes 16 values, got \[17\]$"),
    ((2, 4, 4), r"input_shape \[2, 4, 4\] does not fit the net: TTFSConv2d takes \[C, H, W\] maps of C = 1 channels, "
                r"got \[2, 4, 4\]$"),
    ((16,), r"input_shape \[16\] does not fit the net: TTFSConv2d takes \[C, H, W\] maps of C = 1 channels"),
    ((1, 1, 1), r"input_shape \[1, 1, 1\] does not fit the net: TTFSMaxPool2d takes maps of at least 2 x 2"),
    ((0, 4, 4), r"^to_nir_ttfs's input_shape must be sizes of one time step"),
])
def test_an_input_shape_the_net_does_not_take_is_refused_in_one_line(shape, message):
    # before: (17,) and (2, 4, 4) wrote a graph that nir.read refuses ("type mismatch: 1_flatten.output: [[17]] ->
    # 2_linear.input: [[16]]"), (16,) into a conv was "ValueError: not enough values to unpack" and (1, 1, 1)
    # "ValueError: negative dimensions are not allowed"
    model = _net("exp", conv=shape != (17,))  # conv: 1x8x8 -> ... -> 3; dense: 16 -> 12 -> 5
    with pytest.raises(ConfigError, match=message):
        to_nir_ttfs(model, shape)


@pytest.mark.slow  # training compiles the numba kernels: ~15 s on 2 busy cores
def test_export_command_on_a_ttfs_run(tmp_path, capsys):
    from sklearn.datasets import load_digits

    from deepspike.cli import main
    from deepspike.training.reload import load_run

    run = tmp_path / "run"
    args = ["method.name=ttfs", "method.measures=false", "model.name=mlp", "model.args.hidden=[16]",
            "data.name=digits", "train.epochs=1", "train.batch_size=128", "train.progress=false"]
    assert main(["train", *args, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--nir", str(tmp_path / "m.nir"), "--t-window", "30"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metadata"]["format"] == "ttfs" and summary["metadata"]["method"] == "ttfs"
    assert summary["metadata"]["t_window"] == 30.0
    assert [n.split(":")[1] for n in summary["nodes"]].count("CubaLIF") == 2
    for options in (["--dt", "0.5"], ["--fold-thresholds"]):  # rate-coded options: they were ignored
        assert main(["export", str(run), "--nir", str(tmp_path / "x.nir"), *options]) == 2
        err = capsys.readouterr().err
        assert f"{options[0]} does not apply to {run}, a TTFS net" in err and err.count("\n") == 1
    assert not (tmp_path / "x.nir").exists()
    _, parts, _ = load_run(run, device="cpu")
    x = torch.as_tensor(load_digits().images[:16] / 16.0, dtype=torch.float32).unsqueeze(1)  # [16, 1, 8, 8]
    with torch.no_grad():
        t_in = parts.model.encoder(x).double()
        closed = parts.model.body.double()(t_in)
    t_nir = ttfs_graph_times(read_nir(tmp_path / "m.nir"), t_in, 0.01, 12.0)
    # trained weights have both signs, so errors are not bounded by 3 dt everywhere; most outputs agree closely
    close = ((t_nir - closed).abs() <= 0.05) | (torch.isinf(t_nir) & torch.isinf(closed))
    assert close.float().mean() >= 0.9


def test_ttfs_node_constants_by_hand():
    """Module docstring of ``ttfs_nodes``, tau = 2, large = 10: exp ``tau_syn = tau = 2``, ``tau_mem = 20``, ``r =
    tau_mem / tau = 10``; relpsp ``tau_syn = tau_mem = r = 20``; ``w_in = tau_syn``. kappa over t_end = 10: exp
    ``e^(10/20)``, relpsp ``e^(2 * 10/20)``. The earliest-spike pool of a window of 4 resets to -(4 + 1) = -5."""
    for kernel, want in (("exp", (2.0, 20.0, 10.0)), ("relpsp", (20.0, 20.0, 20.0))):
        node = ttfs_neuron_node(kernel, 1.0, 2.0, (1,), 1.0, large=10.0, t_window=5.0)
        assert (node.tau_syn[0], node.tau_mem[0], node.r[0]) == pytest.approx(want) and node.w_in[0] == want[0]
    assert leak_factor("exp", 2.0, 10.0, 10.0) == pytest.approx(math.exp(0.5))
    assert leak_factor("relpsp", 2.0, 10.0, 10.0) == pytest.approx(math.exp(1.0))
    pool = earliest_spike_node((1,), 4)
    assert (pool.r[0], pool.v_threshold[0], pool.v_reset[0]) == (1.0, 0.5, -5.0)
