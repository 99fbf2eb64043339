"""A recurrent net trained end to end on SHD-format data: every temporal-gradient mode, exact resume, evaluation and
analysis of the run (tiny HDF5 files in the release's layout; the real data set is not needed)."""

import numpy as np
import pytest
import torch

import deepspike as ds
from deepspike.config import load_config
from deepspike.training.trainer import Trainer
from fakedata import write_shd_h5
from tiny_run import full_and_resumed_weights

pytest.importorskip("h5py")


@pytest.fixture
def shd_folder(tmp_path, monkeypatch):
    """SHD/shd_{train,test}.h5 with recordings whose spikes sit in a class-dependent band of channels."""
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    rng = np.random.default_rng(0)

    def recordings(n):
        labels = rng.integers(0, 3, n)
        samples = []
        for label in labels:
            count = int(rng.integers(20, 60))
            samples.append((np.sort(rng.uniform(0, 0.2, count)), rng.integers(200 * label, 200 * label + 200, count)))
        return samples, labels.tolist()

    (tmp_path / "SHD").mkdir()
    write_shd_h5(tmp_path / "SHD" / "shd_train.h5", *recordings(48))
    write_shd_h5(tmp_path / "SHD" / "shd_test.h5", *recordings(16))
    return tmp_path


def _overrides(folder, *extra):
    return ["method.name=stbp", "method.timesteps=10", "method.encoder=frames", "method.readout=membrane",
            "method.loss=ce", "method.decay=0.9", "method.threshold=0.5", "model.name=rsnn", "model.args.hidden=[12]",
            "data.name=shd", f"data.data_dir={folder}", "data.args.timesteps=10", "data.args.time_window_ms=20",
            "data.args.stride=10", "data.args.cache=false", "data.normalize=false", "train.epochs=2",
            "train.batch_size=16", "train.progress=false", "optim.lr=0.01", *extra]


def test_a_recurrent_run_resumes_exactly(shd_folder, tmp_path):
    full, cut = full_and_resumed_weights(load_config(None, _overrides(shd_folder)), tmp_path)
    assert any("recurrent" in key for key in full)
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key


def test_a_run_with_sequence_augmentation_resumes_exactly(shd_folder, tmp_path):
    augment = ["data.augment.channel_shift=3", "data.augment.time_mask=3", "data.augment.channel_mask=5",
               "data.augment.drop_event=0.1"]
    full, cut = full_and_resumed_weights(load_config(None, _overrides(shd_folder, *augment)), tmp_path)
    plain, _ = full_and_resumed_weights(load_config(None, _overrides(shd_folder)), tmp_path / "plain")
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key
    assert any(not torch.equal(value, plain[key]) for key, value in full.items())  # the augmentation took part


@pytest.mark.parametrize("mode", ["checkpoint", "sltt", "ottt"])
def test_every_temporal_gradient_mode_trains_a_recurrent_net(shd_folder, tmp_path, mode):
    segment = ["train.time_segment=4"] if mode == "checkpoint" else []
    config = load_config(None, _overrides(shd_folder, f"train.temporal_grad={mode}", "train.epochs=1", *segment))
    Trainer(config, tmp_path / mode).fit()
    result = ds.evaluate(tmp_path / mode)
    assert result["samples"] == 16 and 0.0 <= result["test_accuracy"] <= 1.0


def test_evaluate_and_analyze_a_recurrent_run(shd_folder, tmp_path):
    Trainer(load_config(None, _overrides(shd_folder)), tmp_path / "run").fit()
    summary = ds.evaluate(tmp_path / "run")
    report = ds.analyze(tmp_path / "run", tmp_path / "analysis")
    assert summary["samples"] == 16 and report["accuracy"] == summary["test_accuracy"]
    synapses = {s["name"]: s for s in report["activity"]["synapses"]}
    feedback = synapses["body.0.recurrent.module"]  # the feedback synapses are priced like any linear layer's
    assert feedback["events_per_sample"] > 0 and feedback["acs_per_sample"] == 12 * feedback["events_per_sample"]
    # the ANN reference of a recurrent net: an RNN of its shape over the T = 10 steps, (70 + 12) 12 + 12 * 20 each
    ops = report["operations"]
    assert ops["ann_reference"] == "rnn_over_T" and ops["ann_macs_per_sample"] == 10 * (82 * 12 + 12 * 20)
    assert ops["snn_over_ann"] == pytest.approx(ops["snn_synops_per_sample"] / ops["ann_macs_per_sample"])


def _delayed(folder, *extra):
    return _overrides(folder, "model.name=dsnn", "model.args.hidden=[12]", "model.args.delays=4", *extra)


def test_a_delayed_run_learns_its_delays_resumes_exactly_and_is_analysed(shd_folder, tmp_path):
    full, cut = full_and_resumed_weights(load_config(None, _delayed(shd_folder, "train.epochs=3")), tmp_path)
    for key, value in full.items():
        assert torch.equal(value, cut[key]), key
    assert full["body.0.sigma"] == pytest.approx(0.23)  # ceil(3 / 4) = 1 epoch of shrinking, then the final width
    report = ds.analyze(tmp_path / "full", tmp_path / "analysis")
    synapses = {s["name"]: s for s in report["activity"]["synapses"]}
    first, second = synapses["body.0"], synapses["body.2"]  # each event reaches every target once, delayed
    assert first["events_per_sample"] == report["activity"]["input_spikes_per_sample"] > 0  # a count of k: k events
    assert first["macs_per_sample"] == 0 and first["acs_per_sample"] == 12 * first["events_per_sample"]  # k spikes
    assert second["events_per_sample"] > 0 and second["acs_per_sample"] == 20 * second["events_per_sample"]
    ops = report["operations"]
    assert ops["ann_reference"] == "rnn_over_T" and ops["ann_macs_per_sample"] == 10 * (70 * 12 + 12 * 20)


@pytest.mark.parametrize(("extra", "message"), [
    (["train.temporal_grad=sltt"], "the layer DelayedLinear needs the whole sequence at once"),
    (["train.temporal_grad=ottt"], "the layer DelayedLinear needs the whole sequence at once"),
    (["train.temporal_grad=eprop"], "the layer DelayedLinear needs the whole sequence at once"),  # sequences.md
    (["train.temporal_grad=checkpoint", "train.time_segment=4"], "needs the whole sequence at once"),
])
def test_what_cannot_run_delays_refuses_in_one_line(shd_folder, tmp_path, extra, message):
    with pytest.raises(ds.ConfigError, match=message):
        Trainer(load_config(None, _delayed(shd_folder, *extra)), tmp_path / "run").fit()
    arch = ds.create_architecture("dsnn", num_classes=3, input_shape=(8,), hidden=[4], delays=3)
    for method in ("spikebp", "ann"):
        with pytest.raises(ds.ConfigError, match="has synaptic delays, which this method cannot build"):
            ds.get_method(method).build(arch)


def test_a_delayed_net_exports_to_nir_only_rounded_and_does_not_stream(shd_folder, tmp_path):
    Trainer(load_config(None, _delayed(shd_folder, "train.epochs=1")), tmp_path / "run").fit()
    with pytest.raises(ds.ConfigError, match="layer DelayedLinear has learnable synaptic delays.*--round-delays"):
        ds.export(tmp_path / "run", tmp_path / "d.nir")  # the rounded net exports (tests/deploy/test_nir_delays.py)
    with pytest.raises(ds.ConfigError, match="streaming: the layer DelayedLinear needs the whole sequence"):
        ds.Stream(ds.load_run(tmp_path / "run")[1].model)


def test_delays_move_and_narrow_while_training(shd_folder, tmp_path):
    seen = []

    def keep(trainer, record):
        layer = trainer.parts.model.body[0]
        seen.append((layer.position.detach().clone(), float(layer.sigma)))

    Trainer(load_config(None, _delayed(shd_folder, "train.epochs=5")), tmp_path / "run", callbacks=[keep]).fit()
    positions, sigmas = zip(*seen)
    assert not torch.equal(positions[0], positions[-1])  # the delays learn (at 100 times the weights' rate)
    # each forward pass puts them back into [0, D - 1] = [0, 3]: at most the last update away, none run off
    assert float(positions[-1].min()) > -1 and float(positions[-1].max()) < 4
    assert sigmas[0] == pytest.approx(2.0) and sigmas[1] < sigmas[0] and sigmas[-1] == pytest.approx(0.23)
