"""Spike rasters (``analysis.raster``): per step, the raster of one sample holds exactly the spikes the activity
monitor counts for that layer (an independent path: ``NetworkMonitor``'s per-step histograms); a smaller raster
shows evenly spaced active neurons and only their own spikes; recording leaves the scores unchanged; ``analyze``
draws it for rate-coded nets only."""

import re

import pytest
import torch

from deepspike.analysis.raster import record_raster
from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.analysis.sweeps import monitor_run
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons.multi_spike import MultiSpikeLIF
from deepspike.neurons.params import NeuronParams
from deepspike.training.trainer import Trainer
from tiny_run import TINY


@pytest.fixture(scope="module")
def net_and_sample():
    torch.manual_seed(0)
    arch = create_architecture("scnn_digits", num_classes=10)
    net = get_method("stbp", {"timesteps": 6, "encoder": "poisson", "threshold": 0.3}).build(arch).eval()
    return net, torch.rand(1, 1, 8, 8)


def test_a_full_raster_holds_the_spikes_the_monitor_counts_at_each_step(net_and_sample):
    net, x = net_and_sample
    rasters = record_raster(net, x, max_neurons=10**6)
    histograms = {h["name"]: h["step_counts"] for h in monitor_run(net, [(x, torch.zeros(1))])["histograms"]}
    assert [r["layer"] for r in rasters] == list(histograms) and sum(r["spikes"] for r in rasters) > 0
    for r in rasters:
        per_step = [0] * r["timesteps"]
        for t, _ in r["events"]:
            per_step[t] += 1
        assert per_step == histograms[r["layer"]] and r["spikes"] == len(r["events"])
        assert len(r["shown"]) == r["active"]


def test_a_small_raster_shows_evenly_spaced_active_neurons_and_only_their_spikes(net_and_sample):
    net, x = net_and_sample
    full = {r["layer"]: r for r in record_raster(net, x, max_neurons=10**6)}
    for r in record_raster(net, x, max_neurons=5):
        whole = full[r["layer"]]
        active = whole["shown"]
        assert r["shown"] == ([active[round(i * (len(active) - 1) / 4)] for i in range(5)] if len(active) > 5
                              else active)
        spikes = {(t, whole["shown"][row]) for t, row in whole["events"]}
        assert {(t, r["shown"][row]) for t, row in r["events"]} == {s for s in spikes if s[1] in r["shown"]}


def test_recording_leaves_the_scores_unchanged_and_one_sample_is_asked(net_and_sample):
    net, x = net_and_sample
    torch.manual_seed(1)
    before = net(x)
    record_raster(net, x)
    torch.manual_seed(1)
    assert torch.equal(net(x), before)
    with pytest.raises(ConfigError, match=r"^a raster is of one sample: x must be \[1, \.\.\.\], got \(2, 1, 8, 8\)$"):
        record_raster(net, torch.rand(2, 1, 8, 8))
    with pytest.raises(ConfigError, match=r"^a raster is of one sample: x must be a torch.Tensor \[1, .*got ndarray$"):
        record_raster(net, x.numpy())  # was AttributeError: 'numpy.ndarray' object has no attribute 'dim'


@pytest.mark.parametrize("count", [0, 2.5, True, "3", None])
def test_the_neurons_shown_must_be_a_whole_number_of_at_least_one(net_and_sample, count):
    """ds.record_raster(net, x, 2.5), True or "3" were TypeError tracebacks (torch.linspace's steps, "<" on a
    string), and True would have shown one neuron; now one line, as record_traces says it."""
    net, x = net_and_sample
    with pytest.raises(ConfigError, match=rf"^--raster must be >= 1 neurons per layer \(0 turns the raster off\), "
                                          rf"got {re.escape(repr(count))}$"):
        record_raster(net, x, max_neurons=count)


def test_analyze_draws_the_raster_of_a_rate_coded_run(tmp_path):
    run = tmp_path / "run"
    Trainer(load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"]), run).fit()
    options = AnalysisOptions(limit=20, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False, raster=8)
    result = analyze_run(run, tmp_path, options)
    assert result["raster"] and all(len(r["shown"]) <= 8 for r in result["raster"])
    assert (tmp_path / "raster.png").is_file() and "![Spike raster" in (tmp_path / "report.md").read_text()
    none = analyze_run(run, None, AnalysisOptions(limit=20, bits=(), snrs=(), deletions=(), jitters=(),
                                                       timesteps=False, raster=0))
    assert none["raster"] == []


def test_a_multi_spike_layers_raster_counts_its_spikes():
    """Counts (3, 0, 1, 0) at threshold 1 (currents 3.5, 0.6, 1.2, 0; ``neurons.multi_spike``): 2 events, 4 spikes as
    the activity recorder counts them (it gave 2, one per non-zero count)."""
    net = torch.nn.Sequential(MultiSpikeLIF(NeuronParams(threshold=1.0, reset="subtract"), max_spikes=3))
    (raster,) = record_raster(net, torch.tensor([[[3.5, 0.6, 1.2, 0.0]]]))  # [T=1, B=1, 4]
    assert (raster["events"], raster["active"], raster["spikes"]) == ([[0, 0], [0, 1]], 2, 4)
