"""Low-latency conversion (Bu et al. 2022): QCFS and per-channel thresholds, v_0 = th / 2, subtraction reset,
direct input, threshold-valued spikes, batch-norm folding, max-pool refusal, energy per T, CLI errors."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.conversion.activation_peaks import ActivationPeaks
from deepspike.conversion.comparison import convert_norms
from deepspike.conversion.pipeline import convert_run
from deepspike.core.errors import ConfigError
from deepspike.layers.qcfs import QCFS, qcfs
from deepspike.methods import get_method
from deepspike.methods.weight_transfer import copy_ann_weights
from deepspike.models import create_architecture
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.training.reload import load_run
from deepspike.training.trainer import Trainer

TINY_VGG = {"blocks": [[3]], "hidden": [], "batch_norm": True, "pool": "avg"}


def _tiny(activation="qcfs", levels=4, **args):
    arch = create_architecture("vgg", num_classes=3, input_shape=(2, 4, 4), **{**TINY_VGG, **args})
    ann = get_method("ann", {"activation": activation, "levels": levels}).build(arch)
    torch.manual_seed(1)
    for m in ann.modules():  # non-trivial batch-norm statistics and QCFS thresholds
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
        if isinstance(m, QCFS):
            m.threshold.data.fill_(1.3)
    return arch, ann.eval()


def _snn(arch, ann, thresholds, timesteps, **options):
    o = {"encoding": "direct", "reset": "subtract", "initial_membrane": 0.5, "readout": "membrane",
         "spike_value": "threshold", "timesteps": timesteps, **options}
    snn = get_method("converted", {**o, "thresholds": thresholds}).build(arch)
    copy_ann_weights(ann, snn)
    return snn.eval()


def test_chunked_if_with_half_threshold_start_equals_qcfs_at_t_equals_l():
    lam, levels = 1.5, 8
    x = torch.linspace(-0.5, 2.0, 101).reshape(1, 101)  # [B, F]
    neuron = ChunkedIF(lam, "subtract", initial=0.5, weighted=True)
    out = neuron(x.expand(levels, 1, 101))  # [T, B, F], values 0 or lambda
    assert set(out.unique().tolist()) <= {0.0, lam}
    assert torch.allclose(out.mean(dim=0), qcfs(x, torch.tensor(lam), levels), atol=1e-6)


def test_per_channel_thresholds_fire_by_hand():
    neuron = ChunkedIF(1.0, "subtract")
    neuron.set_channel_thresholds([1.0, 0.25])
    x = torch.full((4, 1, 2, 1, 1), 0.5)  # [T, B, C, H, W], constant 0.5 into both channels
    spikes = neuron(x)
    assert spikes[:, 0, :, 0, 0].sum(dim=0).tolist() == [2.0, 4.0]  # th 1: fires at steps 2, 4; th 0.25: every step
    with pytest.raises(ConfigError):
        neuron.set_channel_thresholds([1.0, 0.0])
    with pytest.raises(ConfigError):
        neuron(torch.zeros(2, 1, 3, 1, 1))  # 3 channels for 2 thresholds


def test_signed_neuron_by_hand_and_its_count_is_the_quantised_running_sum():
    neuron = ChunkedIF(1.0, "subtract", initial=0.5, signed=True)
    x = torch.tensor([1.0, -1.0, 0.0, 0.3]).reshape(4, 1, 1)
    # v: 1.5 -> fire, 0.5; -0.5 < 0 with one spike out -> -1, 0.5; 0.5; 0.8: net 0 = floor(0.3 + 1/2)
    assert neuron(x).flatten().tolist() == [1.0, -1.0, 0.0, 0.0]
    assert ChunkedIF(1.0, "subtract", initial=0.5)(x).flatten().tolist() == [1.0, 0.0, 0.0, 0.0]  # unsigned keeps it
    th = 0.7
    x = (torch.rand(200, 3, 50, generator=torch.Generator().manual_seed(6)) * 1.8 - 0.85) * th  # |x_t| < th
    count = torch.cumsum(ChunkedIF(th, "subtract", initial=0.5, signed=True)(x), dim=0)
    expected = torch.floor(torch.cumsum(x, dim=0) / th + 0.5).clamp(min=0)
    assert torch.equal(count, expected)
    with pytest.raises(ConfigError):
        ChunkedIF(1.0, "zero", signed=True)


def test_carried_initial_membrane_starts_once():
    neuron = ChunkedIF(1.0, "subtract", initial=0.5)
    x = torch.full((6, 1, 1), 0.25)
    whole = neuron(x)
    with temporal_carry(neuron):
        parts = torch.cat([neuron(x[:2]), neuron(x[2:])])
    assert torch.equal(whole, parts) and whole.sum() == 2  # 0.5 + 0.25 t crosses 1 at t = 2 and t = 6


def test_batch_norm_folding_equals_the_ann_in_eval_mode():
    arch, ann = _tiny(activation="relu")
    snn = get_method("converted", {}).build(arch)
    copy_ann_weights(ann, snn)
    x = torch.randn(5, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    conv = snn.body[0].module
    assert conv.bias is not None
    assert torch.allclose(conv(x), ann[1](ann[0](x)), atol=1e-5)  # folded conv == conv -> BN (eval)


@pytest.mark.parametrize("signed", [False, True])
def test_one_layer_qcfs_net_converts_exactly_at_t_equals_l(signed):
    # conv -> BN -> QCFS -> avg pool -> classifier: with direct input the hidden current is constant, so at
    # T = L the IF layer's mean output is QCFS exactly and the membrane readout is the ANN's output.
    levels = 4
    arch, ann = _tiny(levels=levels)
    snn = _snn(arch, ann, [1.3, 1.0], levels, signed=signed)
    x = torch.randn(16, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(snn(x), ann(x), atol=1e-5)
        assert not torch.allclose(snn(x, timesteps=levels - 1), ann(x), atol=1e-3)  # not at other T


def test_channel_peaks_equal_hand_maxima():
    arch, ann = _tiny(activation="relu")
    x = torch.randn(7, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    peaks = ActivationPeaks(per_channel=True)
    peaks.update(ann, x[:4])
    peaks.update(ann, x[4:])
    with torch.no_grad():
        hidden = ann[2](ann[1](ann[0](x)))  # [7, 3, 4, 4] ReLU outputs
        out = ann(x)
    expected = [hidden[:, c].max().clamp(min=0).item() for c in range(3)]
    found = peaks.peaks()
    assert found[0] == pytest.approx(expected)
    assert found[1] == pytest.approx(out.max(dim=0).values.clamp(min=0).tolist())


def test_max_pooling_is_refused_in_one_line():
    arch, _ = _tiny(activation="relu", pool="max")
    with pytest.raises(ConfigError, match="max pooling"):
        get_method("converted", {}).build(arch)


def test_other_methods_refuse_batch_norm_layers():
    arch, _ = _tiny(activation="relu")
    with pytest.raises(ConfigError, match="batch-norm"):
        get_method("stbp", {}).build(arch)


@pytest.fixture(scope="module")
def qcfs_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("qcfs")
    recipe = ["method.name=ann", "method.activation=qcfs", "method.levels=4", "method.qcfs_threshold=1.0",
              "model.name=vgg", "model.args.blocks=[[8],[16]]", "model.args.hidden=[32]", "data.name=digits",
              "optim.lr=0.01", "train.epochs=6", "train.progress=false"]
    Trainer(load_config(None, recipe), root / "run").fit()
    return root / "run"


def test_qcfs_run_converts_with_its_lambdas_and_energy_per_t(qcfs_run, tmp_path):
    summary = convert_run(qcfs_run, tmp_path / "snn", norm="qcfs", timesteps=8, log=lambda s: None)
    model = load_run(qcfs_run)[1].model
    lambdas = [m.threshold.item() for m in model.modules() if isinstance(m, QCFS)]
    assert summary["thresholds"][:-1] == pytest.approx(lambdas)  # the trained lambdas are the IF thresholds
    assert summary["encoding"] == "direct" and summary["initial_membrane"] == 0.5
    assert summary["ann_test_accuracy"] > 0.8
    assert abs(summary["snn_test_accuracy"] - summary["ann_test_accuracy"]) < 0.03
    ops = json.loads((tmp_path / "snn" / "operations.json").read_text())
    rows = {row["timesteps"]: row for row in ops["by_timesteps"]}
    assert {1, 2, 4, 8} <= set(rows)
    assert rows[8]["snn_acs"] + rows[8]["snn_macs"] == pytest.approx(ops["snn_accumulates_per_sample"])
    layers = {d["snn_layer"]: d for d in ops["layers"]}
    assert rows[8]["snn_macs"] == pytest.approx(sum(d["macs_per_sample"] for d in layers.values()))
    # MACs where the input is analog: the image (body.0, T x its events) and the averages of threshold spikes after
    # each pool (body.3 conv, body.7 linear); the pools and the last linear layer read spikes (ACs)
    assert [k for k, d in layers.items() if d["macs_per_sample"]] == ["body.0", "body.3", "body.7"]
    assert all(d["macs_per_sample"] in (0.0, d["accumulates_per_sample"]) for d in layers.values())
    assert rows[1]["snn_acs"] <= rows[4]["snn_acs"] <= rows[8]["snn_acs"]


def test_cli_refuses_qcfs_norm_on_a_relu_ann(tmp_path):
    recipe = ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "data.name=digits",
              "train.epochs=1", "train.progress=false"]
    Trainer(load_config(None, recipe), tmp_path / "relu").fit()
    result = subprocess.run(
        [sys.executable, "-m", "deepspike", "convert", str(tmp_path / "relu"), "--norm", "qcfs", "--timesteps", "4",
         "--out", str(tmp_path / "snn")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "method.activation=qcfs" in result.stderr
    with pytest.raises(ConfigError, match="spike_value threshold"):
        convert_run(tmp_path / "relu", tmp_path / "snn2", norm="channel", timesteps=4, spike_value="one",
                    log=lambda s: None)
    assert main(["eval", str(tmp_path / "relu"), "--unquantised"]) == 2  # nothing to take the quantisation out of


def test_eval_unquantised_scores_the_limit_of_the_converted_net(qcfs_run, tmp_path, capsys):
    # the converted net at large T tends to the ANN with clip(x, 0, lambda): `eval --unquantised` scores that
    assert main(["eval", str(qcfs_run), "--unquantised"]) == 0
    limit = json.loads(capsys.readouterr().out)
    assert limit["unquantised"] is True
    summary = convert_run(qcfs_run, tmp_path / "snn", norm="qcfs", timesteps=96, log=lambda s: None)
    assert abs(summary["snn_test_accuracy"] - limit["test_accuracy"]) <= 0.006  # 2 of 360 digits


def test_several_norms_side_by_side(qcfs_run, tmp_path):
    result = convert_norms(qcfs_run, tmp_path / "cmp", ["qcfs", "max"], 4, log=lambda s: None)
    rows = {(r["norm"], r["timesteps"]): r for r in result["rows"]}
    assert set(rows) == {(n, t) for n in ("qcfs", "max") for t in (1, 2, 4)}
    for norm in ("qcfs", "max"):
        summary = json.loads((tmp_path / "cmp" / norm / "summary.json").read_text())
        assert rows[(norm, 4)]["snn_accuracy"] == summary["snn_test_accuracy"]
        assert f"| {norm} | {100 * summary['ann_test_accuracy']:.2f} |" in result["table"]
    assert (tmp_path / "cmp" / "comparison.md").read_text() == result["table"]
    assert (tmp_path / "cmp" / "accuracy_vs_timesteps.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="already holds"):
        convert_norms(qcfs_run, tmp_path / "cmp", ["qcfs", "max"], 4, log=lambda s: None)


def test_residual_qcfs_net_with_projection_shortcut_approaches_its_ann():
    # Residual sums in ANN units: identity and 1x1-conv (+ folded BN) shortcuts, threshold-valued spikes. As T
    # grows an IF neuron's rate times lambda tends to clip(x, 0, lambda), QCFS without its quantisation: the
    # reference is the same ANN with L = 10^6 levels.
    arch = create_architecture("resnet", num_classes=3, input_shape=(2, 8, 8), stem=4, stages=[4, 8], blocks=[1, 1])
    ann = get_method("ann", {"activation": "qcfs", "levels": 8}).build(arch)
    torch.manual_seed(4)
    for m in ann.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
        if isinstance(m, QCFS):
            m.threshold.data.uniform_(1.0, 2.0)
    ann.eval()
    lambdas = [m.threshold.item() for m in ann.modules() if isinstance(m, QCFS)]
    snn = _snn(arch, ann, [*lambdas, 1.0], 1024)
    for m in ann.modules():
        if isinstance(m, QCFS):
            m.levels = 10**6
    x = torch.randn(8, 2, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected, found, early = ann(x), snn(x), snn(x, timesteps=2)
    assert (found - expected).abs().max() < 0.02 * expected.abs().max()
    assert (early - expected).abs().max() > (found - expected).abs().max()


def test_nir_export_refuses_low_latency_neurons_in_one_line():
    pytest.importorskip("nir")
    from deepspike.deploy.nir_export import to_nir

    arch, ann = _tiny()
    with pytest.raises(ConfigError, match="threshold-valued spikes"):
        to_nir(_snn(arch, ann, [1.3, 1.0], 4), (2, 4, 4))
