"""``deepspike export RUN --onnx PATH`` (``deploy.onnx_files``): a trained run as an ONNX file that onnxruntime runs
with the run's own spikes, and the refusals of the command line (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import deepspike as ds
from deepspike.cli import main
from deepspike.config import load_config
from deepspike.conversion.pipeline import convert_run
from deepspike.deploy import onnx_files
from deepspike.deploy.conformance import sample_spikes
from deepspike.deploy.families import build, reference_spikes, sample_input
from deepspike.layers.readout import MaxMembraneReadout, MembraneReadout
from deepspike.methods.rate_network import RateNetwork
from deepspike.training.pretrained import preprocess
from deepspike.training.reload import load_run
from deepspike.training.trainer import Trainer

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "fashion_mnist_test_first200.npz"
nir = pytest.importorskip("nir")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from deepspike.deploy import nir_to_onnx, to_nir  # noqa: E402
from deepspike.deploy.nir_export import graph_outputs  # noqa: E402
from deepspike.deploy.onnx_run import onnx_session, run_onnx  # noqa: E402


@pytest.mark.parametrize("form", ["step", "sequence"])
def test_written_file_gives_the_runs_spikes(tiny_run, tmp_path, form):
    path = tmp_path / f"{form}.onnx"
    summary = onnx_files.export_run_onnx(tiny_run, path, form=form)
    assert summary["verified"]["equal"] and summary["verified"]["steps"] == onnx_files.VERIFY_STEPS
    assert summary["form"] == form and summary["opset"] == 17 and summary["bytes"] == path.stat().st_size
    lead = ["steps", "batch"] if form == "sequence" else ["batch"]
    assert summary["inputs"] == {"input": [*lead, 1, 8, 8]} and summary["outputs"] == {"output": [*lead, 10]}
    assert ("states" in summary) == (form == "step")
    _, parts, _ = load_run(tiny_run, device="cpu")
    x = sample_spikes((1, 8, 8), 60, batch=3, rate=0.5, seed=11)  # other input than the check's
    ours = reference_spikes(parts.model, x)
    assert ours.sum() > 0 and torch.equal(run_onnx(onnx_session(path), x), ours)


def test_command_line_writes_the_file_with_dt_and_folded_thresholds(tiny_run, tmp_path, capsys):
    path = tmp_path / "net.onnx"
    assert main(["export", str(tiny_run), "--onnx", str(path), "--onnx-form", "sequence", "--dt", "0.001",
                 "--fold-thresholds"]) == 0
    summary = json.loads(capsys.readouterr().out)["onnx"]
    assert summary["onnx"] == str(path) and summary["verified"]["equal"]
    assert "dt=0.001 s" in onnx.load(str(path)).doc_string


def test_the_file_says_how_the_run_fed_and_read_its_net(tiny_run, tmp_path, capsys):
    """The ONNX file said nothing of the encoder, timesteps, decoding or dt (its metadata_props were empty), where
    the NIR file of the same run carries them: a consumer could not feed it as the run did."""
    onnx_path, nir_path = tmp_path / "net.onnx", tmp_path / "net.nir"
    assert main(["export", str(tiny_run), "--onnx", str(onnx_path), "--nir", str(nir_path), "--dt", "0.0002"]) == 0
    capsys.readouterr()
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    meta = nir.read(str(nir_path)).metadata
    method = yaml.safe_load((tiny_run / "config.yaml").read_text())["method"]
    assert props["encoder"] == meta["encoder"] == method["encoder"] == "direct"
    assert json.loads(props["timesteps"]) == int(meta["timesteps"]) == method["timesteps"] == 2
    assert props["decode"] == meta["decode"] == "rate" and props["method"] == "stbp"
    assert json.loads(props["dt"]) == float(meta["dt"]) == 0.0002


def test_an_earlier_onnx_file_may_be_replaced(tiny_run, tmp_path):
    path = tmp_path / "net.onnx"
    onnx_files.export_run_onnx(tiny_run, path, form="sequence")
    assert onnx_files.export_run_onnx(tiny_run, path, form="step")["form"] == "step"
    assert onnx.load(str(path)).graph.name == "deepspike_step"


def _refused(capsys, args: list[str]) -> str:
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_onnx_refusals_are_one_line_and_write_nothing(tiny_run, tmp_path, capsys):
    run = str(tiny_run)
    analysis = tmp_path / "analysis.json"
    analysis.write_text('{"accuracy": 0.9}')
    assert "exists and is not an ONNX model" in _refused(capsys, [run, "--onnx", str(analysis)])
    assert analysis.read_text() == '{"accuracy": 0.9}'
    assert "--onnx-form shapes the ONNX file" in _refused(capsys, [run, "--nir", str(tmp_path / "a.nir"),
                                                                   "--onnx-form", "step"])
    same = str(tmp_path / "same")
    assert "name the same file" in _refused(capsys, [run, "--nir", same, "--onnx", same])
    assert "--large shape the NIR file" in _refused(capsys, [run, "--onnx", str(tmp_path / "b.onnx"),
                                                             "--large", "10"])
    with pytest.raises(SystemExit, match="2"):  # argparse's choices
        main(["export", run, "--onnx", str(tmp_path / "c.onnx"), "--onnx-form", "loop"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis.json"]


def test_a_ttfs_net_is_refused_for_onnx(tiny_run, tmp_path, monkeypatch):
    graph, _ = onnx_files.run_graph(tiny_run)
    monkeypatch.setattr(onnx_files, "run_graph", lambda *a, **k: (graph, "TTFS"))
    with pytest.raises(ds.ConfigError, match="--onnx writes rate-coded nets stepped in discrete time; .* TTFS net"):
        onnx_files.export_run_onnx(tiny_run, tmp_path / "t.onnx")
    assert not (tmp_path / "t.onnx").exists()


def test_a_nir_refusal_under_onnx_names_the_onnx_export(tiny_run, tmp_path, monkeypatch):
    """``export MAX_MEMBRANE_RUN --onnx m.onnx`` said "NIR export: unsupported readout MaxMembraneReadout ...", an
    export the command did not ask for; the ONNX model is written from the NIR graph, and the line now says so."""
    net = RateNetwork(nn.Identity(), nn.Sequential(nn.Linear(8, 3)), MaxMembraneReadout(), 1)
    monkeypatch.setattr(onnx_files, "run_graph", lambda *a, **k: (to_nir(net, input_shape=(8,)), "rate-coded"))
    with pytest.raises(ds.ConfigError, match=r"^--onnx \(the model is written from the run's NIR graph\): unsupported "
                                             r"readout MaxMembraneReadout \(NIR has no max over time"):
        onnx_files.export_run_onnx(tiny_run, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_ttfs_run_given_nir_and_onnx_writes_neither(tiny_run, tmp_path, monkeypatch, capsys):
    """``export TTFS_RUN --nir a.nir --onnx b.onnx`` wrote a.nir, then refused b.onnx (exit 2 with a file written);
    the ONNX part, which refuses TTFS nets, now runs first."""
    graph, _ = onnx_files.run_graph(tiny_run)
    monkeypatch.setattr(onnx_files, "run_graph", lambda *a, **k: (graph, "TTFS"))
    nir_path, onnx_path = tmp_path / "a.nir", tmp_path / "b.onnx"
    assert "is a TTFS net (export it with --nir)" in _refused(capsys, [str(tiny_run), "--nir", str(nir_path),
                                                                       "--onnx", str(onnx_path)])
    assert list(tmp_path.iterdir()) == []


def test_a_membrane_readouts_graph_output_is_the_integrators_trajectory():
    """``graph_outputs`` (what ``--onnx`` verifies against) for a leaky membrane readout: ``v_t = 0.8 v_{t-1} + o_t``
    of the body's outputs, by a plain loop here, and the ONNX model of the exported graph gives the same values."""
    net = build("dense")
    net = RateNetwork(nn.Identity(), net.body, MembraneReadout(0.8), timesteps=1).eval()
    x = sample_input("dense", 30, batch=2)
    values, spiking = graph_outputs(net, x)
    with torch.no_grad():
        o = net.body(x)
    v, expected = torch.zeros_like(o[0]), []
    for t in range(30):
        v = 0.8 * v + o[t]
        expected.append(v)
    assert not spiking and torch.equal(values, torch.stack(expected))
    theirs = run_onnx(onnx_session(nir_to_onnx(to_nir(net, (64,)))), x)
    torch.testing.assert_close(theirs, values, rtol=1e-5, atol=1e-5)


def test_the_converted_zoo_net_as_onnx_scores_its_cards_sample_accuracy(tmp_path, capsys):
    """``deepspike zoo converted_qcfs_vgg_fmnist --onnx``: the QCFS VGG (T = 64, thresholds per channel, v_0 = th/2,
    threshold-valued signed spikes), run by onnxruntime alone on the packaged 200 test images (direct input:
    the standardised image at every step), classifies them as its card says (argmax of the readout's membrane)."""
    path = tmp_path / "qcfs.onnx"
    assert main(["zoo", "converted_qcfs_vgg_fmnist", "--onnx", str(path), "--onnx-form", "sequence"]) == 0
    summary = json.loads(capsys.readouterr().out)["onnx"]
    assert summary["verified"]["max_abs_difference"] == 0.0 and summary["preprocess"]["normalize"]
    assert summary["encoding"] == {"encoder": "direct", "timesteps": 64, "decode": "membrane"}
    card = ds.zoo_card("converted_qcfs_vgg_fmnist")
    sample = np.load(SAMPLE, allow_pickle=False)
    images = preprocess(card, torch.tensor(sample["images"], dtype=torch.float32).unsqueeze(1) / 255.0)
    x = images.unsqueeze(0).expand(card["timesteps"], *images.shape).contiguous()
    membrane = run_onnx(onnx_session(path), x)  # [T, 200, 10]
    accuracy = (membrane[-1].argmax(1) == torch.tensor(sample["labels"])).float().mean().item()
    assert accuracy == pytest.approx(card["sample_accuracy"], abs=1e-6)  # 188 of 200 (float32 mean)


def test_zoo_onnx_refusals(tmp_path, capsys):
    assert main(["zoo", "ttfs_fmnist", "--onnx", str(tmp_path / "t.onnx")]) == 2
    assert "the zoo entry ttfs_fmnist is a ttfs net" in capsys.readouterr().err
    assert main(["zoo", "stbp_fmnist", "spikebp_fmnist", "--onnx", str(tmp_path / "t.onnx")]) == 2
    assert "name exactly one (got 2)" in capsys.readouterr().err
    assert main(["zoo", "stbp_fmnist", "--onnx-form", "step"]) == 2
    assert not list(tmp_path.iterdir())


def test_a_zoo_entrys_summary_says_which_encoder_feeds_the_model(tmp_path, capsys):
    """The model takes the encoder's output, not the image: spikebp_fmnist's is bipolar spikes ``sign(x) 1[|x| > U_t]``
    over T = 8 steps. The summary said only how images are standardised (``preprocess``), so a user fed the image
    itself as for a direct-coded net; it now names the encoder, T and the decoding."""
    assert main(["zoo", "spikebp_fmnist", "--onnx", str(tmp_path / "s.onnx")]) == 0
    summary = json.loads(capsys.readouterr().out)["onnx"]
    assert summary["encoding"] == {"encoder": "bipolar", "timesteps": 8, "decode": "membrane", "bipolar_scale": 1.0,
                                   "bipolar_value": 1.0}  # s_t = 1 sign(x) 1[U_t < |x| / 1]
    assert summary["preprocess"] == ds.zoo_card("spikebp_fmnist")["input"]


def test_the_ann_zoo_entry_is_refused_as_an_ann(tmp_path, capsys):
    # before: "NIR export supports rate-coded networks (with .body); got Sequential: wrap a net of your own as
    # RateNetwork(...)", advice for a net of one's own, not for a shipped ANN
    assert main(["zoo", "ann_qcfs_vgg_fmnist", "--onnx", str(tmp_path / "a.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the zoo entry ann_qcfs_vgg_fmnist is an ANN" in err
    assert not list(tmp_path.iterdir())


def test_a_low_latency_converted_run_given_nir_and_onnx_writes_neither(tmp_path, capsys):
    """``export QCFS_SNN --nir a.nir --onnx b.onnx``: --nir refuses a low-latency converted net (v_0 = th/2,
    threshold-valued spikes), --onnx writes it. The ONNX part ran first, so b.onnx was on disk when the NIR part
    refused (exit 2 with a file written); the NIR graph is now built before either file is written."""
    recipe = ["method.name=ann", "method.activation=qcfs", "method.levels=4", "method.qcfs_threshold=1.0",
              "model.name=mlp", "model.args.hidden=[16]", "data.name=digits", "train.epochs=1", "train.progress=false"]
    Trainer(load_config(None, recipe), tmp_path / "ann").fit()
    convert_run(tmp_path / "ann", tmp_path / "snn", norm="qcfs", timesteps=4, log=lambda s: None)
    capsys.readouterr()
    out = tmp_path / "out"
    out.mkdir()
    assert "(export --onnx writes it)" in _refused(capsys, [str(tmp_path / "snn"), "--nir", str(out / "a.nir"),
                                                            "--onnx", str(out / "b.onnx")])
    assert list(out.iterdir()) == []
    assert main(["export", str(tmp_path / "snn"), "--onnx", str(out / "b.onnx")]) == 0  # --onnx alone writes it
    assert json.loads(capsys.readouterr().out)["onnx"]["verified"]["max_abs_difference"] == 0.0
