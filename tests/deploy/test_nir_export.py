"""NIR export/import: round trips through files, threshold folding, a third-party consumer (snnTorch)."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.coding.encoder import InputEncoder
from deepspike.core.errors import ConfigError
from deepspike.layers.leaky_integrator import LeakyIntegratorReadout
from deepspike.layers.readout import MembraneReadout, SpikeRateReadout
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import get_method
from deepspike.methods.rate_network import RateNetwork
from deepspike.models import create_architecture
from deepspike.neurons import IF, LIF
from deepspike.neurons.psn import PSN

nir = pytest.importorskip("nir")
from deepspike.deploy import GraphSimulator, export_run, from_nir, read_nir, to_nir, write_nir  # noqa: E402
from deepspike.deploy.nir_export import _pool_shape, check_dt, graph_outputs  # noqa: E402


def _stbp_net(seed: int = 1, **options) -> nn.Module:
    torch.manual_seed(seed)
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8), width=1.0)
    return get_method("stbp", {"timesteps": 6, "encoder": "poisson", **options}).build(arch).eval()


def _spikes(seed: int, shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < 0.5).float()


def _our_output(model, x):
    with torch.no_grad():
        return model.readout.neuron(model.body(x))  # [T, B, K] output spikes


def test_lif_parameters_written_as_continuous_time(tmp_path):
    model = _stbp_net()
    g = to_nir(model, (1, 8, 8), dt=1e-3)
    lif = g.nodes["1_lif"]
    # decay 0.25 = 1 - dt/tau -> tau = 1e-3 / 0.75; R = tau / dt = 1 / 0.75; threshold 0.5
    np.testing.assert_allclose(lif.tau, 1e-3 / 0.75, rtol=1e-6)
    np.testing.assert_allclose(lif.r, 1 / 0.75, rtol=1e-6)
    np.testing.assert_allclose(lif.v_threshold, 0.5)
    assert lif.tau.shape == (16, 8, 8)
    assert g.metadata["encoder"] == "poisson" and g.metadata["decode"] == "rate" and g.metadata["dt"] == 1e-3
    path = write_nir(g, tmp_path / "m.nir")
    back = nir.read(str(path))
    assert back.metadata["reset"] in ("zero", b"zero")


@pytest.mark.parametrize("fold", [False, True])
def test_round_trip_reproduces_output_spikes(tmp_path, fold):
    model = _stbp_net(vote_group=2)
    write_nir(to_nir(model, (1, 8, 8), fold_thresholds=fold), tmp_path / "m.nir")
    net = from_nir(tmp_path / "m.nir")
    x = _spikes(0, (6, 5, 1, 8, 8))
    with torch.no_grad():
        theirs = net(x)
    ours = _our_output(model, x)
    assert theirs.shape == (6, 5, 20) and ours.sum() > 0
    assert torch.equal(theirs, ours)
    if fold:
        thresholds = [float(np.unique(n.v_threshold)[0]) for n in nir.read(str(tmp_path / "m.nir")).nodes.values()
                      if isinstance(n, nir.LIF)]
        assert thresholds == [1.0] * 4
    assert net.metadata["decode"] == "vote" and net.metadata["num_classes"] == 10


def test_a_spikebp_net_round_trips_with_its_strict_firing(tmp_path):
    """lee2020's leak-corrected LIF had no NIR mapping though the exporter's docstring listed spikebp: it is a LIF
    firing at v > threshold with reset to zero."""
    torch.manual_seed(2)
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8), width=1.0)
    model = get_method("spikebp", {"timesteps": 6}).build(arch).eval()
    graph = to_nir(model, (1, 8, 8))
    assert {n.metadata["fires"] for n in graph.nodes.values() if isinstance(n, nir.LIF | nir.IF)} == {
        "v > threshold"}
    write_nir(graph, tmp_path / "spikebp.nir")
    x = _spikes(4, (6, 5, 1, 8, 8))
    with torch.no_grad():
        currents = model.body(x)  # [T, B, K]: the output layer's currents; the readout integrates them (an LI node)
        theirs = from_nir(tmp_path / "spikebp.nir")(x)
    trace, v = [], torch.zeros_like(currents[0])
    for current in currents:  # v_t = leak v_{t-1} + x_t, by hand
        v = model.readout.leak * v + current
        trace.append(v)
    assert currents.abs().sum() > 0
    torch.testing.assert_close(theirs, torch.stack(trace))


def test_if_subtract_and_spiking_pool_round_trip(tmp_path):
    # hand-built rate net: conv -> IF(subtract) -> lee2020 spiking pool (IF, fires at > 0.75) -> linear -> IF
    torch.manual_seed(3)
    body = nn.Sequential(TimeDistributed(nn.Conv2d(1, 4, 3, padding=1)), IF(threshold=0.7, reset="subtract"),
                         SpikingAvgPool(2, threshold=0.75), TimeDistributed(nn.Flatten()),
                         TimeDistributed(nn.Linear(64, 3)))
    body[0].module.weight.data.abs_().mul_(2.0)  # dense first-layer spikes -> pooled values of k/4
    model = RateNetwork(nn.Identity(), body, SpikeRateReadout(IF(threshold=0.4, reset="subtract")), 8).eval()
    g = to_nir(model, (1, 8, 8), fold_thresholds=True)
    kinds = [type(n).__name__ for n in g.nodes.values()]
    assert kinds == ["Input", "Conv2d", "IF", "AvgPool2d", "IF", "Flatten", "Affine", "IF", "Output"]
    assert g.nodes["3_if"].metadata["fires"] == "v > threshold"
    write_nir(g, tmp_path / "if.nir")
    net = from_nir(tmp_path / "if.nir")
    x = _spikes(1, (8, 4, 1, 8, 8))
    with torch.no_grad():
        ours = model.readout.neuron(model.body(x))
        assert torch.equal(net(x), ours)
        # the pooling neuron sees exact ties (3 of 4 spikes = 0.75): strict '>' must survive the trip
        pooled = nn.functional.avg_pool2d(model.body[1](model.body[0](x)).flatten(0, 1), 2)
        assert (pooled == 0.75).any() and ours.sum() > 0



def test_a_grouped_conv_is_written_as_its_plain_conv_that_nir_reads(tmp_path):
    """A conv in two groups (weight [6, 2, 3, 3]) was written with groups=2, and nir.read refused the file (NIR 1.0.8
    takes a Conv2d's inputs as weight.shape[1]: "type mismatch: 1_if.output: [[4 6 6]] -> 2_conv.input: [[2 6 6]]");
    now the block-diagonal plain conv [6, 4, 3, 3]: nir.read takes it, from_nir's and the float64 simulator's output
    spikes are the net's."""
    torch.manual_seed(3)
    body = nn.Sequential(TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)), IF(threshold=0.5),
                         TimeDistributed(nn.Conv2d(4, 6, 3, padding=1, groups=2)), IF(threshold=0.5),
                         TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(216, 3)))
    for m in (body[0].module, body[2].module):
        m.weight.data.abs_().mul_(3.0)
    model = RateNetwork(nn.Identity(), body, SpikeRateReadout(IF(threshold=0.2)), 6).eval()
    path = write_nir(to_nir(model, (2, 6, 6)), tmp_path / "g.nir")
    back = nir.read(str(path))  # type-checked
    w = body[2].module.weight.detach().numpy()
    assert back.nodes["2_conv"].weight.shape == (6, 4, 3, 3) and int(back.nodes["2_conv"].groups) == 1
    assert np.array_equal(back.nodes["2_conv"].weight[:3, :2], w[:3]) and not back.nodes["2_conv"].weight[:3, 2:].any()
    assert np.array_equal(back.nodes["2_conv"].weight[3:, 2:], w[3:]) and not back.nodes["2_conv"].weight[3:, :2].any()
    x = _spikes(2, (6, 3, 2, 6, 6))
    ours = _our_output(model, x)
    with torch.no_grad():
        assert torch.equal(from_nir(path)(x), ours) and ours.sum() > 0
    assert torch.equal(GraphSimulator.rate_coded(back).run({"input": x})["output"].float(), ours)


def test_padded_spiking_pool_round_trip(tmp_path):
    # lee2020 pooling neuron on a 3x3 / stride 2 / padding 1 window: 8x8 -> 4x4, padding = silent inputs
    torch.manual_seed(4)
    body = nn.Sequential(TimeDistributed(nn.Conv2d(1, 4, 3, padding=1)), IF(threshold=0.7),
                         SpikingAvgPool(3, stride=2, threshold=0.3, padding=1), TimeDistributed(nn.Flatten()),
                         TimeDistributed(nn.Linear(64, 3)))
    body[0].module.weight.data.abs_().mul_(2.0)
    model = RateNetwork(nn.Identity(), body, SpikeRateReadout(IF(threshold=0.4)), 8).eval()
    g = to_nir(model, (1, 8, 8))
    pool = [n for n in g.nodes.values() if type(n).__name__ == "AvgPool2d"][0]
    assert list(pool.padding) == [1, 1] and list(pool.kernel_size) == [3, 3]
    write_nir(g, tmp_path / "pad.nir")
    net = from_nir(tmp_path / "pad.nir")
    x = _spikes(1, (8, 4, 1, 8, 8))
    with torch.no_grad():
        ours = model.readout.neuron(model.body(x))
        assert ours.sum() > 0 and torch.equal(net(x), ours)

def test_unsupported_layers_and_non_finite_values_are_refused(tmp_path):
    body = nn.Sequential(TimeDistributed(nn.Conv2d(1, 2, 3)), IF(), TimeDistributed(nn.MaxPool2d(2)))
    model = RateNetwork(nn.Identity(), body, SpikeRateReadout(IF()), 4)
    with pytest.raises(ConfigError, match="max pooling"):
        to_nir(model, (1, 8, 8))
    with pytest.raises(ConfigError, match=r"got Sequential: wrap .* as RateNetwork\(encoder, body, readout, timesteps"):
        to_nir(body, (1, 8, 8))
    good = _stbp_net()
    g = to_nir(good, (1, 8, 8))
    g.nodes["0_conv"].weight[0, 0, 0, 0] = np.inf
    with pytest.raises(ConfigError, match="non-finite"):
        write_nir(g, tmp_path / "bad.nir")
    assert not (tmp_path / "bad.nir").exists()


def test_snntorch_consumer_reproduces_output_spikes(tmp_path):
    """A third-party NIR consumer (snnTorch's import_from_nir) runs deepspike's exported file.

    snnTorch maps NIR LIF (dt fixed at 1e-4 in its importer) to ``Leaky(beta = 1 - dt/tau, threshold,
    reset zero)``: the same recurrence as our LIF. Its Flatten keeps NIR's batch-free ``start_dim = 0``, so it
    is fed one sample at a time, one step per call, with its hidden state cleared between samples.
    """
    snn_import = pytest.importorskip("snntorch.import_nir")
    model = _stbp_net(seed=1)
    write_nir(to_nir(model, (1, 8, 8), dt=1e-4), tmp_path / "m.nir")
    net = snn_import.import_from_nir(nir.read(str(tmp_path / "m.nir")))
    x = _spikes(2, (6, 4, 1, 8, 8))
    ours = _our_output(model, x)
    theirs = torch.zeros_like(ours)
    with torch.no_grad():
        for b in range(x.shape[1]):
            for mod in net.modules():
                if hasattr(mod, "reset_mem"):
                    mod.reset_mem()
            for t in range(x.shape[0]):
                out = net(x[t, b])
                theirs[t, b] = out[0] if isinstance(out, tuple) else out
    assert ours.sum() >= 10  # the comparison is not vacuous
    assert torch.equal(theirs, ours)


@pytest.mark.slow
def test_export_command_on_a_trained_run(tmp_path):
    from deepspike.config import load_config
    from deepspike.training.trainer import Trainer

    overrides = ["method.name=stbp", "method.timesteps=2", "model.name=mlp", "model.args.hidden=[16]",
                 "data.name=digits", "train.epochs=1", "train.batch_size=256", "train.progress=false"]
    config = load_config(None, overrides)
    Trainer(config, tmp_path / "run").fit()
    summary = export_run(tmp_path / "run", tmp_path / "run.nir", fold_thresholds=True)
    assert summary["metadata"]["method"] == "stbp" and summary["metadata"]["thresholds_folded"]
    net = from_nir(tmp_path / "run.nir")
    assert net.input_shape == (1, 8, 8)


@pytest.mark.parametrize("target, message", [
    ("checkpoint.pt", "is the run file checkpoint.pt of run"),
    ("config.yaml", "is the run file config.yaml of run"),
    ("summary.json", "is the run file summary.json of run"),
    (".", "is a folder; give the name of a file to write"),
    ("/dev/null", "is not a regular file"),
    ("config.yaml/model.nir", "is a file, not a folder"),
])
def test_export_never_writes_over_the_run_or_into_odd_paths(tiny_run, capsys, target, message):
    """issue 19, item 4: ``export RUN --nir RUN/checkpoint.pt`` wrote HDF5 over the checkpoint; ``--nir DIR``
    gave a traceback."""
    from deepspike.cli import main

    path = target if target.startswith("/") else str(tiny_run / target)
    before = {p.name: p.read_bytes() for p in tiny_run.iterdir()}
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--nir", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: --nir ") and message in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in tiny_run.iterdir()} == before


def test_a_nir_file_is_written_whole_or_not_at_all(tiny_run, tmp_path, capsys, monkeypatch):
    """A write that fails (here: a folder that cannot hold files) is one line and leaves no file; a later failure
    while encoding leaves the earlier file as it was and no temporary file beside it."""
    from deepspike.cli import main

    assert main(["export", str(tiny_run), "--nir", "/proc/model.nir"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: cannot write /proc/model.nir: ") and err.count("\n") == 1
    target = tmp_path / "model.nir"
    export_run(tiny_run, target)
    written = target.read_bytes()
    import nir

    def fail_midway(file, graph, **kw):
        file.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nir, "write", fail_midway)
    with pytest.raises(OSError):
        export_run(tiny_run, target)
    assert target.read_bytes() == written and [p.name for p in tmp_path.iterdir()] == ["model.nir"]


def test_a_refused_target_report_writes_no_nir_file(tiny_run, tmp_path, capsys):
    from deepspike.cli import main

    if importlib.util.find_spec("sinabs") is not None:
        pytest.skip("sinabs is installed: the speck report is not refused")
    assert main(["export", str(tiny_run), "--nir", str(tmp_path / "m.nir"), "--target", "speck"]) == 2
    assert "--target speck needs sinabs" in capsys.readouterr().err and not (tmp_path / "m.nir").exists()


@pytest.mark.parametrize("options, message", [
    (["--large", "5"], "--large does not apply to {run}, a rate-coded net"),
    (["--t-window", "30"], "--t-window does not apply to {run}, a rate-coded net"),
    (["--limit", "5"], "--limit counts the test samples of --target xylo's accuracy"),
])
def test_an_option_the_run_does_not_use_is_refused(tiny_run, tmp_path, capsys, options, message):
    """They were accepted and ignored (found by a sweep of the commands)."""
    from deepspike.cli import main

    assert main(["export", str(tiny_run), "--nir", str(tmp_path / "m.nir"), *options]) == 2
    err = capsys.readouterr().err
    assert message.format(run=tiny_run) in err and err.count("\n") == 1 and not (tmp_path / "m.nir").exists()


def test_an_ann_run_is_sent_to_convert(tmp_path, capsys):
    from deepspike.cli import main

    run = tmp_path / "ann"
    assert main(["train", "method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "data.name=digits",
                 "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--nir", str(tmp_path / "m.nir")]) == 2
    err = capsys.readouterr().err
    assert f"is an ANN run: convert it to a spiking net first (deepspike convert {run}" in err
    assert err.count("\n") == 1


def test_export_through_a_link_to_the_checkpoint_is_refused(tiny_run, tmp_path):
    (tmp_path / "model.nir").symlink_to(tiny_run / "checkpoint.pt")
    with pytest.raises(ConfigError, match="is the run file checkpoint.pt"):
        export_run(tiny_run, tmp_path / "model.nir")
    export_run(tiny_run, tiny_run / "model.nir")  # a file of another name inside the run folder is fine
    assert from_nir(tiny_run / "model.nir").input_shape == (1, 8, 8)


class _DoublingReadoutNeuron(IF):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


def test_a_layer_with_its_own_forward_is_not_exported_as_its_base():
    model = _stbp_net()
    model.readout.neuron = _DoublingReadoutNeuron()
    with pytest.raises(ConfigError, match="_DoublingReadoutNeuron overrides forward"):
        to_nir(model, (1, 8, 8))
    model = _stbp_net()
    model.readout = type("_OwnReadout", (SpikeRateReadout,), {"forward": lambda self, s: s.mean(0)})(IF())
    with pytest.raises(ConfigError, match="_OwnReadout overrides forward"):
        to_nir(model, (1, 8, 8))


def test_a_layer_of_ones_own_is_named_as_a_layer_without_a_node():
    model = _stbp_net()
    model.body.append(type("_OwnNorm", (nn.Module,), {"forward": lambda self, x: x / x.norm()})())
    with pytest.raises(ConfigError, match="^NIR export: layer _OwnNorm has no NIR mapping"):
        to_nir(model, (1, 8, 8))


def test_a_layer_without_a_node_is_named_before_it_runs():
    """A PSN layer needs all T steps at once; the exporter names it instead of running it on one step."""
    model = _stbp_net()
    model.body.append(PSN(timesteps=6))
    with pytest.raises(ConfigError, match="^NIR export: layer PSN has no NIR mapping"):
        to_nir(model, (1, 8, 8))


@pytest.mark.parametrize("readout", [MembraneReadout(decay=0.99), LeakyIntegratorReadout(leak=0.99)])
def test_leaky_readout_exported_as_li_with_tau_and_r_of_the_euler_step(readout):
    """NIR's LI is ``tau dv/dt = -v + R (I + v_leak)``; one Euler step of dt gives ``v <- (1 - dt/tau) v +
    (dt R / tau) I``, which is ``v <- decay v + x`` for ``tau = dt / (1 - decay)``, ``R = tau / dt``: by hand
    decay 0.99, dt = 1e-4 -> tau = 0.01, R = 100, v_leak = 0."""
    body = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), IF(), TimeDistributed(nn.Linear(3, 2)))
    g = to_nir(RateNetwork(InputEncoder("direct"), body, readout, timesteps=3).eval(), (4,), dt=1e-4)
    li = g.nodes["3_li"]
    assert isinstance(li, nir.LI)
    np.testing.assert_allclose(li.tau, [0.01, 0.01], rtol=1e-5)
    np.testing.assert_allclose(li.r, [100.0, 100.0], rtol=1e-5)
    np.testing.assert_array_equal(li.v_leak, [0.0, 0.0])
    np.testing.assert_allclose(1 - 1e-4 / li.tau, 0.99, rtol=1e-6)  # the step's decay


def test_readout_without_leak_exported_as_i_with_r_one_over_dt():
    """Decay 1: NIR's I, ``dv/dt = R I``; one Euler step adds ``dt R I``, which is ``x`` for ``R = 1 / dt`` = 1e4."""
    body = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), IF(), TimeDistributed(nn.Linear(3, 2)))
    g = to_nir(RateNetwork(InputEncoder("direct"), body, MembraneReadout(), timesteps=3).eval(), (4,), dt=1e-4)
    assert isinstance(g.nodes["3_i"], nir.I)
    np.testing.assert_allclose(g.nodes["3_i"].r, [1e4, 1e4], rtol=1e-6)


def test_a_diehl_cook_net_is_refused_with_what_nir_lacks():
    net = get_method("wta_stdp").build(create_architecture("diehl_cook", 10, (1, 8, 8), neurons=5))
    with pytest.raises(ConfigError, match="conductance-based synapses, adaptive thresholds and a label vote"):
        to_nir(net, (1, 8, 8))


def test_a_readout_without_memory_round_trips_at_the_default_step():
    """Decay 0 (v_t = x_t) is LI with tau = dt: written as the nearest float32 it fell below dt = 1e-4
    (9.9999997e-05) and from_nir refused deepspike's own file; the time constant is now rounded up."""
    torch.manual_seed(0)
    body = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), IF(), TimeDistributed(nn.Linear(3, 2)))
    model = RateNetwork(InputEncoder("direct"), body, MembraneReadout(decay=0.0), timesteps=3).eval()
    g = to_nir(model, (4,), dt=1e-4)
    tau = g.nodes["3_li"].tau
    below = np.nextafter(tau, np.float32(0)).astype(np.float64)
    assert tau.dtype == np.float32 and (tau.astype(np.float64) >= 1e-4).all() and (below < 1e-4).all()  # the least
    x = torch.rand(3, 5, 4) * 3  # [T, B, 4]
    with torch.no_grad():
        torch.testing.assert_close(from_nir(g)(x), model.body(x))  # the trace is the step's input


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 1.0])
def test_a_layer_tau_reads_back_the_float32_decay_the_net_runs(dt):
    """One tau for a layer (LIF node, LI readout) is the float32 that reads back the net's float32 decay, as the
    per-neuron ``time_constants_reading_back`` gives: the rounded-up tau alone read back another float32 decay for
    ~50% of random decays (0.9 at dt = 1e-3)."""
    from deepspike.deploy.neurons import float32_time_constant, time_constants_reading_back

    decays = np.random.default_rng(7).uniform(0.0, 1.0, 1000)
    per_layer = np.array([float32_time_constant(dt, k) for k in decays], dtype=np.float32)
    assert np.array_equal(per_layer, time_constants_reading_back(dt, decays))
    reads = (1.0 - dt / per_layer.astype(np.float64)).astype(np.float32)
    high = decays >= 0.5  # below 0.5 some float32 decays lie between two float32 taus' decays (no tau gives them)
    assert np.array_equal(reads[high], decays[high].astype(np.float32)) and (per_layer.astype(np.float64) > dt).all()


def test_a_lif_net_written_and_read_runs_its_own_float32_decay():
    torch.manual_seed(0)
    body = nn.Sequential(TimeDistributed(nn.Linear(4, 16)), LIF(decay=0.9, threshold=0.5),
                         TimeDistributed(nn.Linear(16, 3)))
    model = RateNetwork(InputEncoder("direct"), body, MembraneReadout(decay=0.9), timesteps=20).eval()
    back = from_nir(to_nir(model, (4,), dt=1e-3))
    neuron, integrator = back.body[1], back.body[3]
    assert np.float32(neuron.params.decay) == np.float32(integrator.decay) == np.float32(0.9)  # before: 0.89999998
    x = torch.rand(20, 8, 4) * 2  # [T, B, 4]
    with torch.no_grad():
        assert torch.equal(back.body[:2](x), model.body[:2](x))


def test_a_dt_of_true_is_refused():
    # check_dt took True for the int 1 (dt = 1 s)
    model = get_method("stbp", {"timesteps": 2}).build(create_architecture("mlp", num_classes=3, input_shape=(4,)))
    with pytest.raises(ConfigError, match=r"^dt must be a finite number of seconds > 0 \(a normal float32\), got True"):
        to_nir(model.eval(), (4,), dt=True)


@pytest.mark.parametrize(("args", "message"), [
    (("m.nir", (4,)), "to_nir takes a network (an nn.Module), got 'm.nir'"),
    ((None, (4,)), "to_nir takes a network (an nn.Module), got None"),
    ((True, 4), "to_nir's input_shape must be sizes of one time step (whole numbers >= 1), e.g. (1, 28, 28), got 4"),
    ((True, (-1,)), "to_nir's input_shape must be sizes of one time step (whole numbers >= 1), e.g. (1, 28, 28), "
                    "got (-1,)"),
    ((True, (1.5, 4)), "to_nir's input_shape must be sizes of one time step (whole numbers >= 1), e.g. (1, 28, 28), "
                       "got (1.5, 4)"),
    ((True, "abc"), "to_nir's input_shape must be sizes of one time step (whole numbers >= 1), e.g. (1, 28, 28), "
                    "got 'abc'"),
    ((True, (3,)), "NIR export: layer Linear does not take an input of shape [3] (input_shape does not fit the net: "
                   "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x400))"),
], ids=["path", "None", "int shape", "negative", "fraction", "text", "wrong size"])
def test_a_model_or_input_shape_to_nir_cannot_export_is_refused_in_one_line(args, message):
    # before: AttributeError, TypeError "'int' object is not iterable", torch's RuntimeError, and (1.5, 4) was
    # written as (1, 4)
    model = get_method("stbp", {"timesteps": 2}).build(create_architecture("mlp", num_classes=3, input_shape=(4,)))
    net, shape = args
    with pytest.raises(ConfigError) as e:
        to_nir(model.eval() if net is True else net, shape)
    assert str(e.value) == message


def test_metadata_that_is_not_a_dict_is_refused_and_numpy_sizes_are_taken():
    model = get_method("stbp", {"timesteps": 2}).build(create_architecture("mlp", num_classes=3, input_shape=(4,)))
    with pytest.raises(ConfigError, match=r"^to_nir's metadata must be a dict, got \[1\]$"):  # was a TypeError
        to_nir(model.eval(), (4,), metadata=[1])
    assert list(to_nir(model.eval(), (np.int64(4),)).nodes["input"].input_type["input"]) == [4]


def test_write_nir_refuses_what_is_not_a_graph_or_a_path_in_one_line(tmp_path):
    # before: AttributeError "'str' object has no attribute 'nodes'" and Path()'s TypeError for a list
    model = get_method("stbp", {"timesteps": 2}).build(create_architecture("mlp", num_classes=3, input_shape=(4,)))
    with pytest.raises(ConfigError, match=r"^write_nir takes a nir.NIRGraph \(to_nir's\), got 'g.nir'$"):
        write_nir("g.nir", tmp_path / "g.nir")
    with pytest.raises(ConfigError, match=r"^write_nir's path must be a file path, got \['g.nir'\]$"):
        write_nir(to_nir(model.eval(), (4,)), ["g.nir"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("metadata", "where"), [
    ({"note": None}, "the graph metadata 'note' = None"),
    ({"run": {"tags": [1, "x"]}}, "the graph metadata 'run/tags' = [1, 'x']"),
])
def test_metadata_hdf5_cannot_store_is_one_line_naming_it(tmp_path, metadata, where):
    # before: h5py's TypeError "One of data, shape or dtype must be specified" (None) or "No conversion path for
    # dtype: dtype('<U21')" (numbers and text in one list) from inside nir.write, with no word of which value
    model = get_method("stbp", {"timesteps": 2}).build(create_architecture("mlp", num_classes=3, input_shape=(4,)))
    with pytest.raises(ConfigError) as error:
        write_nir(to_nir(model.eval(), (4,), metadata=metadata), tmp_path / "g.nir")
    assert str(error.value).startswith(f"write_nir: {where} cannot be stored in a NIR file (HDF5: ")
    graph = to_nir(model.eval(), (4,))
    graph.nodes["input"].metadata["x"] = None
    with pytest.raises(ConfigError, match=r"^write_nir: node 'input' metadata 'x' = None cannot be stored"):
        write_nir(graph, tmp_path / "g.nir")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dt", [1e308, -1e308])
def test_a_dt_past_float32_is_refused_in_one_line_without_a_warning(dt):
    # 1e308 printed numpy's "RuntimeWarning: overflow encountered in cast" (two more lines) before the error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=r"^dt must be a finite number of seconds > 0"):
            check_dt(dt)


def test_a_graph_holding_zero_dimensional_arrays_is_written_and_reads_back_the_same(tmp_path):
    """Norse's export holds a LIF's v_reset as a 0-d array, which nir.write could not store (h5py: 'Scalar datasets
    don't support chunk/filter options', a traceback from write_nir); it is written as a scalar, read back as one."""
    ones = np.ones(3, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "fc": nir.Affine(weight=np.array([[1.0, 0.5], [0.2, 0.9], [0.7, 0.7]], np.float32), bias=0 * ones),
             "lif": nir.LIF(tau=np.array(2e-3), r=np.array(1.0), v_leak=np.array(0.0), v_threshold=np.array(0.8),
                            v_reset=np.array(0.0)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    # scalar constants for a layer of 3 neurons, the types saying so (as Norse's traced graph does)
    nodes["lif"].input_type, nodes["lif"].output_type = {"input": np.array([3])}, {"output": np.array([3])}
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3}, type_check=False)
    path = write_nir(graph, tmp_path / "scalars.nir")
    back = read_nir(path).nodes["lif"]
    assert [float(np.asarray(getattr(back, k))) for k in ("tau", "v_threshold", "v_reset")] == [2e-3, 0.8, 0.0]
    assert np.ndim(graph.nodes["lif"].v_reset) == 0  # the caller's graph is left alone
    x = (torch.rand(30, 2, 2, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad():
        assert torch.equal(from_nir(path)(x), from_nir(graph)(x))


def test_a_hidden_layers_spike_delay_is_written_as_a_one_step_delay_node(tmp_path):
    """``model.args.spike_delay: 1`` (``layers.spike_delay``): a ``Delay`` node of ``dt`` on each of the hidden
    layer's 5 neurons after them (it was refused, "layer SpikeDelay has no NIR mapping"); ``GraphSimulator`` runs the
    file spike for spike as the net, whose output a step-late hidden layer changes, and ``from_nir`` reads it back."""
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 5, "encoder": "frames", "threshold": 0.3, "reset": "subtract"})
    model = method.build(create_architecture("mlp", num_classes=3, input_shape=(6,), hidden=[5],
                                             spike_delay=1)).eval()
    graph = to_nir(model, (6,), dt=1e-3)
    delay = graph.nodes["3_delay"]
    assert isinstance(delay, nir.Delay) and np.allclose(delay.delay, np.full(5, 1e-3)) and delay.delay.shape == (5,)
    assert ("2_lif", "3_delay") in graph.edges and ("3_delay", "4_linear") in graph.edges
    x = _spikes(1, (5, 4, 6))
    ours = _our_output(model, x)
    path = write_nir(graph, tmp_path / "g.nir")
    back = nir.read(str(path))
    assert ours.sum() > 0 and torch.equal(GraphSimulator.rate_coded(back).run({"input": x})["output"].float(), ours)
    with torch.no_grad():  # read back as a DelayedLinear whose delays are all 1 step: the same net
        assert torch.equal(from_nir(path)(x), ours)


def test_a_multi_spike_net_is_refused_in_one_line():
    """``method.max_spikes: 31`` (``neurons.multi_spike``): NIR's LIF fires one spike a step, so the file would run
    another net; the export names the layer and the way out."""
    method = get_method("stbp", {"timesteps": 2, "reset": "subtract", "neuron": "synaptic", "max_spikes": 31})
    model = method.build(create_architecture("mlp", num_classes=3, input_shape=(6,), hidden=[5])).eval()
    with pytest.raises(ConfigError, match=r"^NIR export: layer MultiSpikeSynapticLIF fires up to 31 spikes a step "
                                          r"\(method.max_spikes\) and NIR's LIF fires one: export it with --target "
                                          r"xylo, or train with method.max_spikes: 1$"):
        to_nir(model, (6,))


def test_a_pools_output_shape_takes_each_axis_own_kernel_stride_and_padding():
    """``H' = (H + 2p - k) // s + 1`` per axis: (C, H, W) = (3, 5, 6), kernel (2, 3), stride (1, 2), padding (0, 1):
    H' = (5 - 2) // 1 + 1 = 4, W' = (6 + 2 - 3) // 2 + 1 = 3 (the height's stride for the width gave 6)."""
    assert _pool_shape((2, 3), (1, 2), (3, 5, 6), (0, 1)) == (3, 4, 3)


def test_graph_outputs_of_a_leaky_membrane_readout_by_hand():
    """The Output of a membrane readout of decay 0.5 carries ``v_t = 0.5 v_{t-1} + o_t``: a body giving o = 1, 1, 1
    (Linear 1 -> 1, weight 1, no bias) reads 1, 1.5, 1.75 (not the sum 1, 2, 3), and is not spiking."""
    lin = nn.Linear(1, 1, bias=False)
    nn.init.ones_(lin.weight)
    net = RateNetwork(nn.Identity(), nn.Sequential(TimeDistributed(lin)), MembraneReadout(decay=0.5), 3).eval()
    trace, spiking = graph_outputs(net, torch.ones(3, 1, 1))
    assert trace.reshape(-1).tolist() == [1.0, 1.5, 1.75] and not spiking
