"""Membrane traces (``analysis.traces``): hand-worked membranes and thresholds of a LIF and an adaptive LIF; in nets of
every neuron kind that carries its state (LIF, IF, PLIF, synaptic, adaptive, a converted net's per-channel IF, a
recurrent net) the traced spikes are the raster's (an independent path: ``analysis.raster`` hooks the network's own
outputs); half fired and half silent neurons are shown; neurons that cannot be replayed are skipped with the reason;
recording changes neither the scores nor the model; ``analyze`` draws and tables it, and refuses bad counts."""

import pytest
import torch
from torch import nn

from deepspike.analysis.raster import record_raster
from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.analysis.traces import record_traces, shown_neurons
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_import import from_nir
from deepspike.methods import create_model, get_method
from deepspike.models import create_architecture
from deepspike.neurons import LIF
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.psn import PSN
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF
from deepspike.training.trainer import Trainer
from tiny_run import TINY


class TimeFirst(nn.Module):
    """``x [1, T, N] -> neuron(x as [T, 1, N])``: a bare neuron layer as a net of one sample."""

    def __init__(self, *neurons: nn.Module) -> None:
        super().__init__()
        self.neurons = nn.Sequential(*neurons)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neurons(x.transpose(0, 1).contiguous())


def test_a_lif_trace_is_its_hand_worked_membrane():
    # decay 0.5, threshold 1, reset to zero. Neuron 0: h = 0.6, 0.3 + 0.6 = 0.9, 0.45 + 0.6 = 1.05 (fires, v = 0),
    # 0 + 0.2 = 0.2. Neuron 1: 0.1, 0.15, 0.175, 0.1875 (silent).
    x = torch.tensor([[[0.6, 0.1], [0.6, 0.1], [0.6, 0.1], [0.2, 0.1]]])
    (trace,) = record_traces(TimeFirst(LIF(decay=0.5, threshold=1.0)), x, max_neurons=2)
    assert trace["shown"] == [0, 1] and trace["fired"] == [True, False] and trace["spikes"] == [[2, 0]]
    assert torch.allclose(torch.tensor(trace["membrane"]),
                          torch.tensor([[0.6, 0.1], [0.9, 0.15], [0.0, 0.175], [0.2, 0.1875]]))
    assert trace["threshold"] == [[1.0, 1.0]] * 4 and trace["timesteps"] == 4 and trace["neurons"] == 2


def test_an_adaptive_lif_trace_shows_its_rising_threshold():
    # th 1, beta 0.5, rho 0.5, decay 0.5, reset to zero, x = 1.2 at every step:
    # t0: h 1.2 >= theta 1 -> fires, v 0, a 1; t1: h 1.2 < theta 1 + 0.5 = 1.5 -> v 1.2, a 0.5;
    # t2: h 0.6 + 1.2 = 1.8 >= theta 1.25 -> fires, v 0, a 1.25; t3: h 1.2 < theta 1.625 -> v 1.2.
    neuron = AdaptiveLIF(NeuronParams(decay=0.5, threshold=1.0), adapt_decay=0.5, adapt_scale=0.5)
    (trace,) = record_traces(TimeFirst(neuron), torch.full((1, 4, 1), 1.2), max_neurons=1)
    assert trace["spikes"] == [[0, 0], [2, 0]]
    assert torch.allclose(torch.tensor(trace["membrane"]).flatten(), torch.tensor([0.0, 1.2, 0.0, 1.2]))
    assert torch.allclose(torch.tensor(trace["threshold"]).flatten(), torch.tensor([1.0, 1.5, 1.25, 1.625]))


def _stbp(neuron: str, **more) -> nn.Module:
    torch.manual_seed(0)
    arch = create_architecture("scnn_digits", num_classes=10)
    options = {"timesteps": 6, "encoder": "poisson", "threshold": 0.3, "neuron": neuron, **more}
    return get_method("stbp", options).build(arch).eval()


def _converted() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), ChunkedIF(threshold=0.4, initial=0.5), nn.Linear(5, 3), ChunkedIF())
    net[1].set_channel_thresholds([0.2, 0.3, 0.4, 0.5, 0.6])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = net

        def forward(self, x):
            return self.body(x.transpose(0, 1))

    return Net().eval()


def _rsnn() -> nn.Module:
    torch.manual_seed(0)
    net = create_model("rsnn", method="stbp", num_classes=3, input_shape=(12,), model_args={"hidden": [16]},
                       timesteps=8, encoder="frames", readout="rate", decay=0.8, threshold=0.5).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.4)
    return net


NETS = {
    "lif": (lambda: _stbp("lif"), (1, 1, 8, 8)),
    "if": (lambda: _stbp("lif", decay=1.0), (1, 1, 8, 8)),
    "plif": (lambda: _stbp("plif"), (1, 1, 8, 8)),
    "synaptic": (lambda: _stbp("synaptic"), (1, 1, 8, 8)),
    "alif": (lambda: _stbp("alif"), (1, 1, 8, 8)),
    "converted": (_converted, (1, 7, 6)),
    "recurrent": (_rsnn, (1, 8, 12)),
}


@pytest.mark.parametrize("kind", list(NETS))
def test_traced_spikes_are_the_networks_own_in_every_neuron_kind(kind):
    build, shape = NETS[kind]
    net = build()
    torch.manual_seed(3)
    x = torch.rand(*shape) * (3.0 if kind in ("converted", "recurrent") else 1.0)
    traces = record_traces(net, x, max_neurons=6)
    rasters = {r["layer"]: r for r in record_raster(net, x, max_neurons=10**6)}
    assert [t["layer"] for t in traces] == list(rasters) and all("skipped" not in t for t in traces)
    assert sum(sum(t["fired"]) for t in traces) > 0
    for t in traces:
        r = rasters[t["layer"]]
        spikes = {(step, r["shown"][row]) for step, row in r["events"]}
        assert {(step, t["shown"][row]) for step, row in t["spikes"]} == {s for s in spikes if s[1] in t["shown"]}
        assert [n in r["shown"] for n in t["shown"]] == t["fired"]
        assert len(t["membrane"]) == len(t["threshold"]) == t["timesteps"] == r["timesteps"]


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_a_net_run_under_bfloat16_autocast_is_traced(kind):
    # the fused kernels keep a bfloat16 input's membrane in float32; the replay runs in float32 alike
    net = _stbp(kind)
    torch.manual_seed(0)
    x = torch.rand(1, 1, 8, 8)
    with torch.autocast("cpu", torch.bfloat16):
        traces = record_traces(net, x, max_neurons=6)
        rasters = {r["layer"]: r for r in record_raster(net, x, max_neurons=10**6)}
    assert all("skipped" not in t for t in traces) and sum(sum(t["fired"]) for t in traces) > 0
    for t in traces:
        assert [n in rasters[t["layer"]]["shown"] for n in t["shown"]] == t["fired"]


def test_per_channel_thresholds_are_traced_per_neuron():
    net = _converted()
    first = record_traces(net, torch.rand(1, 7, 6) * 3.0, max_neurons=5)[0]
    assert first["shown"] == [0, 1, 2, 3, 4]
    assert torch.allclose(torch.tensor(first["threshold"][0]), torch.tensor([0.2, 0.3, 0.4, 0.5, 0.6]))


def test_half_fired_half_silent_evenly_spaced_and_the_other_group_fills():
    fired = torch.tensor([True, False] * 10)  # fired: 0, 2, ..., 18; silent: 1, 3, ..., 19
    assert shown_neurons(fired, 4) == [0, 1, 18, 19]
    assert shown_neurons(fired, 5) == [0, 1, 8, 18, 19]  # ceil(5 / 2) = 3 fired: 0, 8 (index 4.5 -> 4, to even), 18
    assert shown_neurons(torch.tensor([True, False, False, False]), 3) == [0, 1, 3]
    assert shown_neurons(torch.tensor([False, False, True]), 3) == [0, 1, 2]
    assert shown_neurons(torch.zeros(6, dtype=torch.bool), 2) == [0, 5]
    assert shown_neurons(torch.ones(2, dtype=torch.bool), 8) == [0, 1]


class OwnNeuron(nn.Module):
    is_spiking_neuron = True

    def forward(self, x):
        return (x > 0.5).float()


@pytest.mark.parametrize("neuron, reason", [
    (PSN(timesteps=4), "PSN does not carry its state from step to step"),
    (OwnNeuron(), "OwnNeuron does not carry its state from step to step"),
])
def test_neurons_that_cannot_be_replayed_are_skipped_with_the_reason(neuron, reason):
    traces = record_traces(TimeFirst(neuron, LIF(threshold=0.5)), torch.rand(1, 4, 3), max_neurons=2)
    assert traces[0] == {"layer": "neurons.0", "skipped": reason} and "skipped" not in traces[1]


def test_lee2020s_neuron_is_traced_with_the_membrane_of_a_plain_loop():
    """spikebp's leak-corrected LIF carries its membrane step by step now, so its traces are recorded (it was
    skipped): ``h_t = 0.9 v_{t-1} + x_t``, a spike where ``h_t > 0.5``, then ``v_t = 0``, by a loop here."""
    x = torch.rand(1, 6, 3, generator=torch.Generator().manual_seed(3))  # one sample: [B=1, T=6, N=3]
    traces = record_traces(TimeFirst(LeakCorrectedLIF(leak=0.9, threshold=0.5), LIF(threshold=0.5)), x,
                           max_neurons=3)
    v, expected = torch.zeros(3), []
    for x_t in x[0]:
        h = 0.9 * v + x_t
        v = torch.where(h > 0.5, torch.zeros(3), h)
        expected.append(v)
    record = traces[0]
    assert "skipped" not in record and record["threshold"][0] == [0.5, 0.5, 0.5]
    shown = record["shown"]
    torch.testing.assert_close(torch.tensor(record["membrane"]), torch.stack(expected)[:, shown])
    assert any(record["fired"])


def test_recording_leaves_the_scores_and_the_model_unchanged():
    net = _stbp("alif")
    x = torch.rand(1, 1, 8, 8)
    torch.manual_seed(1)
    before = net(x)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    record_traces(net, x)
    torch.manual_seed(1)
    assert torch.equal(net(x), before) and net.training is False
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert all(getattr(m, "carry", None) is None and getattr(m, "state", None) is None for m in net.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    with pytest.raises(ConfigError, match=r"^membrane traces are of one sample: x must be \[1, \.\.\.\], got "):
        record_traces(net, torch.rand(2, 1, 8, 8))
    with pytest.raises(ConfigError, match=r"^--traces must be >= 1 neurons per layer"):
        record_traces(net, x, max_neurons=0)


def test_analyze_draws_and_tables_the_traces_and_refuses_bad_counts(tmp_path):
    run = tmp_path / "run"
    Trainer(load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"]), run).fit()
    quick = {"limit": 20, "bits": (), "snrs": (), "deletions": (), "jitters": (), "timesteps": False, "raster": 0}
    result = analyze_run(run, tmp_path, AnalysisOptions(**quick, traces=3))
    assert result["traces"] and all(len(t["shown"]) == 3 for t in result["traces"])
    report = (tmp_path / "report.md").read_text()
    assert (tmp_path / "traces.png").is_file() and "![Membrane traces" in report
    assert "## Membrane traces (first test sample)" in report
    assert analyze_run(run, None, AnalysisOptions(**quick, traces=0))["traces"] == []
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match=r"^--traces must be an integer >= 0"):
            analyze_run(run, None, AnalysisOptions(**quick, traces=bad))


def test_an_imported_nir_net_is_traced_on_one_coded_sample(tmp_path):
    """An imported net takes its input coded, [T, B, ...]: record_traces and record_raster refused its one sample
    [T, 1, ...] with 'x must be [1, ...]' (and took [1, B, ...], one step of a batch)."""
    pytest.importorskip("nir")
    from deploy.nir_files import tiny_graph, write

    net = from_nir(write(tiny_graph(), tmp_path / "tiny.nir"))
    x = (torch.rand(6, 1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    traces = record_traces(net, x)
    raster = record_raster(net, x)
    assert [t["layer"] for t in traces] == [r["layer"] for r in raster] and len(traces) == 2
    assert all(t["timesteps"] == 6 and "skipped" not in t for t in traces)
    with pytest.raises(ConfigError, match=r"membrane traces are of one sample: x must be \[T, 1, \.\.\.\], got \(1, 2"):
        record_traces(net, x[:1].expand(1, 2, 1, 8, 8).contiguous())
    with pytest.raises(ConfigError, match=r"a raster is of one sample: x must be \[T, 1, \.\.\.\], got \(6,\)"):
        record_raster(net, torch.zeros(6))
