"""End to end on digits: a ReLU VGG with batch-norm and max pooling -> exact TTFS run; eval, CLI, fine-tuning."""

import json

import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.conversion.calibration import calibration_batch
from deepspike.conversion.to_ttfs import _compare, convert_to_ttfs
from deepspike.core.errors import ConfigError
from deepspike.training.reload import evaluate_run, load_run
from deepspike.training.trainer import Trainer

ANN = ["method.name=ann", "model.name=vgg", "model.args.blocks=[[4,4],[8]]", "model.args.hidden=[16]",
       "model.args.pool=max", "data.name=digits", "data.normalize=true", "optim.name=adam", "optim.lr=0.01",
       "train.epochs=2", "train.batch_size=32", "train.progress=false"]


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ann")
    summary = Trainer(load_config(None, ANN), out).fit()
    assert summary["test_accuracy"] > 0.6
    return out, summary["test_accuracy"]


@pytest.fixture(scope="module")
def converted(ann_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("ttfs") / "run"
    return out, convert_to_ttfs(ann_run[0], out, calib_samples=256, log=lambda s: None)


def test_conversion_keeps_the_ann_accuracy_with_few_spikes(ann_run, converted):
    _, summary = converted
    assert summary["ann_test_accuracy"] == pytest.approx(ann_run[1])
    # Calibrated on 256 training images, a test image may exceed a window: predictions still agree.
    assert summary["prediction_agreement"] >= 0.99
    assert abs(summary["accuracy_drop_pp"]) <= 1.0
    assert 0 < summary["spikes_per_neuron"] < 1
    assert summary["synaptic_ops"] > 0 and summary["latency"] <= summary["total_time"]


def test_eval_reloads_the_converted_run(converted):
    out, summary = converted
    assert evaluate_run(out)["test_accuracy"] == pytest.approx(summary["snn_test_accuracy"])
    windows = json.loads((out / "windows.json").read_text())
    assert len(windows["hidden"]) == 4 and windows["input"] > 0


def test_cli_convert_to_ttfs_and_refusals(ann_run, tmp_path, capsys):
    assert main(["convert", str(ann_run[0]), "--to", "ttfs", "--out", str(tmp_path / "c"), "--calib-samples", "64",
                 "--limit", "50", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"ann_test_accuracy", "snn_test_accuracy", "spikes_per_neuron"} <= set(summary)
    assert main(["convert", str(ann_run[0]), "--to", "ttfs", "--out", str(tmp_path / "c"), "--quiet"]) == 2
    assert "already holds" in capsys.readouterr().err


def test_an_alpha_other_than_one_is_refused_for_a_conversion(ann_run, tmp_path, capsys):
    """Neurons code ReLU(a) / alpha; with the ANN's weights unchanged the next layer computed W a / alpha + b. A sweep
    measured prediction agreement 0.19 at alpha 2 and 0.54 at alpha 0.5 while the summary said nothing."""
    assert main(["convert", str(ann_run[0]), "--to", "ttfs", "--alpha", "2", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--alpha=2: a ReLU ANN maps exactly onto TTFS neurons with alpha = 1 only" in err and err.count("\n") == 1
    assert not (tmp_path / "c").exists()


def test_a_margin_whose_windows_leave_float32_is_refused(ann_run, tmp_path, capsys):
    """--margin 1e38 passed the option check (at most float32's largest) but its windows overflowed float32: a
    RuntimeError traceback; --margin 1e-320 gave windows of 0 and exit 0 (SNN accuracy 0.10, the ANN's 0.90)."""
    for margin in ("1e38", "1e-320"):
        assert main(["convert", str(ann_run[0]), "--to", "ttfs", "--margin", margin, "--out", str(tmp_path / "c"),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "positive range" in err and err.count("\n") == 1 and not (tmp_path / "c").exists()


@pytest.mark.parametrize("to, options, names", [
    ("ttfs", ["--timesteps", "5", "--norm", "max", "--reset", "zero"], "--norm, --timesteps, --reset"),
    ("rate", ["--margin", "2"], "--margin"),
])
def test_an_option_of_the_other_conversion_is_refused(ann_run, tmp_path, capsys, to, options, names):
    """They were accepted and ignored (found by a sweep of the commands)."""
    assert main(["convert", str(ann_run[0]), "--to", to, "--out", str(tmp_path / "c"), "--quiet", *options]) == 2
    err = capsys.readouterr().err
    assert f"--to {to} does not use {names}" in err and err.count("\n") == 1 and not (tmp_path / "c").exists()


def test_fine_tuning_starts_from_the_conversion(converted, tmp_path):
    out, summary = converted
    config = load_config(None, ["method.name=ttfs_window", f"method.init_from={out}", "method.latency_cost=0.1",
                                "method.spike_cost=0.1", *ANN[1:-2], "optim.lr=0.0001", "train.epochs=1",
                                "train.batch_size=32", "train.progress=false"])
    result = Trainer(config, tmp_path / "ft").fit()
    assert result["test_accuracy"] >= summary["snn_test_accuracy"] - 0.05  # starts where the conversion is
    assert 0 < result["spikes_per_neuron"] < 1


def test_a_qcfs_ann_is_refused(tmp_path):
    run = tmp_path / "q"
    Trainer(load_config(None, [*ANN[:-2], "method.activation=qcfs", "train.epochs=1", "train.batch_size=64",
                               "train.progress=false"]), run).fit()
    with pytest.raises(ConfigError, match="maps ReLU activations exactly"):
        convert_to_ttfs(run, tmp_path / "out", calib_samples=8, log=lambda s: None)


def test_analyze_reads_the_spikes_of_a_converted_run(converted):
    """``deepspike analyze``/``compare`` see the same spikes, decision times and synaptic operations."""
    from deepspike.analysis.report import AnalysisOptions, analyze_run

    out, summary = converted
    options = AnalysisOptions(limit=None, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)
    activity = analyze_run(out, None, options)["activity"]
    assert activity["decision_time_mean"] == pytest.approx(summary["latency"])
    assert activity["input_spikes_per_sample"] == pytest.approx(summary["input_spikes"])
    assert activity["acs_per_sample"] == pytest.approx(summary["synaptic_ops"]) and activity["macs_per_sample"] == 0


def test_analyze_has_no_jitter_sweep_for_a_windowed_ttfs_net(converted, tmp_path, capsys):
    """A windowed TTFS net's layers pass on the values their spikes code: the jitter sweep hooked only the input
    layer and moved its values as if they were times (x (1 + sigma e); the hidden layers' spikes never moved), and
    reported that as spike-time jitter. Now there is no jitter sweep for it, and --jitter is one line, exit 2."""
    from deepspike.analysis.report import AnalysisOptions, analyze_run

    out, _ = converted
    options = AnalysisOptions(limit=50, bits=(), snrs=(), deletions=None, jitters=None, timesteps=False, plots=False)
    result = analyze_run(out, None, options)
    assert "jitter" not in result["sweeps"] and result["activity"]["layers"][0]["coding"] == "ttfs"
    args = ["analyze", str(out), "--limit", "20", "--bits", "", "--snr", "", "--out", str(tmp_path / "a")]
    assert main([*args, "--jitter", "0.1"]) == 2
    assert capsys.readouterr().err == ("deepspike: error: --jitter moves the spike times of closed-form TTFS layers; a "
                                       "windowed TTFS net (ttfs_window, convert --to ttfs) passes on the values its "
                                       "spikes code: leave it out\n")


def test_fine_tuning_can_start_from_the_ann_itself(ann_run, tmp_path):
    """``method.init_from`` an ANN run: its parameters load module for module, the windows come from the first
    batch; a network of another shape is refused in one line."""
    run, accuracy = ann_run
    config = load_config(None, ["method.name=ttfs_window", f"method.init_from={run}", "method.margin=1.5",
                                *ANN[1:-2], "optim.lr=0.0001", "train.epochs=1", "train.batch_size=32",
                                "train.progress=false"])
    assert Trainer(config, tmp_path / "ft").fit()["test_accuracy"] >= accuracy - 0.1
    wider = load_config(None, ["method.name=ttfs_window", f"method.init_from={run}", *ANN[1:-2],
                               "model.args.hidden=[32]", "train.epochs=1", "train.progress=false"])
    with pytest.raises(ConfigError, match="not the same model"):
        Trainer(wider, tmp_path / "ft2").fit()


def test_every_window_is_margin_times_the_anns_largest_activation(ann_run, tmp_path):
    """``convert_to_ttfs(margin=1.5)``: each window is 1.5 x what the ANN itself reaches on the calibration images,
    read independently with forward hooks on the ANN's ReLUs (hidden), its input (largest ``|x|``) and its logits."""
    convert_to_ttfs(ann_run[0], tmp_path / "out", calib_samples=64, margin=1.5, limit=8, log=lambda s: None)
    windows = json.loads((tmp_path / "out" / "windows.json").read_text())
    config, parts, _ = load_run(ann_run[0], device="cpu")
    x = calibration_batch(config, parts.data, 64, torch.device("cpu"))
    peaks = []
    relus = [m for m in parts.model.modules() if isinstance(m, torch.nn.ReLU)]
    for m in relus:
        m.register_forward_hook(lambda mod, inp, out: peaks.append(float(out.max())))
    with torch.no_grad():
        logits = parts.model.eval()(x)
    assert len(peaks) == len(relus) == len(windows["hidden"]) == 4
    assert windows["input"] == pytest.approx(1.5 * float(x.abs().max()), rel=1e-5)
    assert windows["hidden"] == pytest.approx([1.5 * p for p in peaks], rel=1e-5)
    assert windows["output"] == pytest.approx(1.5 * float(logits.max()), rel=1e-5)


def test_non_finite_scores_are_not_reported_as_no_deviation():
    """``max(0.0, nan)`` is 0.0: NaN SNN scores were summarised as a deviation of 0."""
    from deepspike.conversion.to_ttfs import _compare

    class Scores(torch.nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x):
            return torch.full((len(x), 3), self.value)

    batches = [(torch.zeros(2, 4), torch.tensor([0, 1]))]
    result = _compare(Scores(1.0), Scores(float("nan")), batches, lambda line: None)
    assert result["max_relative_score_deviation"] == float("inf")


def test_an_empty_out_is_refused_not_read_as_the_current_folder(ann_run, tmp_path, monkeypatch):
    """``Path("")`` is ``.``: ``convert RUN --to ttfs --out ''`` converted into the current folder and replaced the
    recipe config.yaml there with the TTFS run's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("# my recipe\n")
    with pytest.raises(ConfigError, match="^--out is empty; give the name of a folder$"):
        convert_to_ttfs(ann_run[0], "", calib_samples=16, limit=5, log=lambda s: None)
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
    assert (tmp_path / "config.yaml").read_text() == "# my recipe\n"


def test_a_net_without_hidden_layers_has_its_measures():
    """A single-layer ReLU ANN (``mlp`` with ``hidden=[]``) has no hidden TTFS layer, so the measures hold no
    ``hidden_before_decision``: its conversion ended in a ``KeyError`` after writing windows.json."""
    from deepspike.conversion.to_ttfs import _measures
    from deepspike.methods import get_method
    from deepspike.methods.window_network import calibrate_windows
    from deepspike.models import create_architecture
    from deepspike.models.costs import count_macs

    arch = create_architecture("mlp", num_classes=3, input_shape=(1, 2, 2), hidden=[])
    torch.manual_seed(0)
    ann = get_method("ann", {}).build(arch).eval()
    method = get_method("ttfs_window", {"alpha": 1.0, "margin": 1.0})
    snn = method.build(arch)
    method.init_from_run(snn, "ann", ann)
    x = torch.randn(8, 1, 2, 2)
    calibrate_windows(snn, [x], 1.0)
    result = _measures(snn, [(x, torch.zeros(8, dtype=torch.long))], count_macs(arch))
    assert result["hidden_before_decision"] != result["hidden_before_decision"]  # NaN: no hidden neuron
    assert list(result["spikes_per_neuron_by_layer"]) == ["output"]
    assert result["synaptic_ops_over_ann_macs"] == result["synaptic_ops"] / 12  # 4 inputs x 3 outputs


class _Column(torch.nn.Module):
    """A stand-in net whose scores are column ``i`` of the batch ``[B, 2, K]``."""

    def __init__(self, i):
        super().__init__()
        self.i = i

    def forward(self, x):
        return x[:, self.i]


def test_the_comparison_by_hand():
    # ANN logits (2, 1), (0, -4): predictions 0, 0, 1 of labels (0, 1) right; SNN scores (2, 1.5), (0, 1): 0, 1, both
    # right; drop 100 (1 - 2) / 2 = -50 pp, agreement 1/2; deviation relative to each sample's largest |logit| (2, 4):
    # max(0.5 / 2, 5 / 4) = 1.25
    x = torch.tensor([[[2.0, 1.0], [2.0, 1.5]], [[0.0, -4.0], [0.0, 1.0]]])
    result = _compare(_Column(0), _Column(1), [(x, torch.tensor([0, 1]))], lambda line: None)
    assert result == {"test_samples": 2, "ann_test_accuracy": 0.5, "snn_test_accuracy": 1.0, "accuracy_drop_pp": -50.0,
                      "prediction_agreement": 0.5, "max_relative_score_deviation": 1.25}


def test_zero_calibration_samples_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--calib-samples must be >= 1"):
        convert_to_ttfs(tmp_path / "run", tmp_path / "out", calib_samples=0)


def test_a_zero_margin_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="margin, alpha > 0; got 64, 0.0"):
        convert_to_ttfs(tmp_path / "run", tmp_path / "out", calib_samples=64, margin=0.0)
