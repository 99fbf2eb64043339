"""``deepspike eval RUN --round-delays``: a net with learnable delays scored with each delay rounded to a whole step,
against the same net rounded by hand (``DelayedLinear.round_delays_``) and run directly; the checkpoint untouched;
refused in one line on a net without delays."""

import json

import pytest
import torch
import torch.nn.functional as F

import deepspike as ds
from deepspike.cli import main
from deepspike.layers.delays import DelayedLinear

ROWS = ["method.name=stbp", "method.timesteps=8", "method.encoder=frames", "method.loss=ce", "method.readout=membrane",
        "method.decay=0.9", "method.threshold=0.5", "model.name=dsnn", "model.args.hidden=[8]", "data.name=digits_rows",
        "data.val_fraction=0", "train.epochs=1", "train.progress=false"]  # digits read row by row: T = 8 rows of 8


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two one-epoch runs on digits_rows: ``delayed`` (delays 0-3 steps, at the first epoch's wide Gaussian, so
    rounding changes the outputs) and ``plain`` (``delays=1``: the same net without delays)."""
    root = tmp_path_factory.mktemp("eval_runs")
    ds.train(None, root / "delayed", [*ROWS, "model.args.delays=4"])
    ds.train(None, root / "plain", [*ROWS, "model.args.delays=1"])
    return root


def _eval(capsys, *args):
    capsys.readouterr()
    assert main(["eval", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def _outputs_on_test(run, round_by_hand):
    """Class scores ``[N, C]`` and labels ``[N]`` of the run's whole test split in one forward pass."""
    _, parts = ds.load_run(run, device="cpu")
    layers = [m for m in parts.model.modules() if isinstance(m, DelayedLinear)]
    assert len(layers) == 2
    if round_by_hand:
        for layer in layers:
            layer.round_delays_()
    x = torch.stack([parts.data.test[i][0] for i in range(len(parts.data.test))]).float()  # [N, T, F]
    y = torch.tensor([int(parts.data.test[i][1]) for i in range(len(parts.data.test))])
    with torch.no_grad():
        return parts.model.eval()(x), y


def test_rounded_eval_equals_the_net_rounded_by_hand(runs, capsys):
    rounded = _eval(capsys, runs / "delayed", "--round-delays")
    out, y = _outputs_on_test(runs / "delayed", round_by_hand=True)
    assert rounded["samples"] == len(y)
    assert rounded["test_accuracy"] == pytest.approx(float((out.argmax(-1) == y).float().mean()), abs=1e-12)
    assert rounded["test_loss"] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-5)
    trained, _ = _outputs_on_test(runs / "delayed", round_by_hand=False)
    assert not torch.allclose(out, trained, atol=1e-3)  # rounding at sigma 2 changes the net: the check bites
    assert _eval(capsys, runs / "delayed")["test_loss"] == pytest.approx(float(F.cross_entropy(trained, y)), rel=1e-5)


def test_rounded_eval_says_so_and_the_plain_eval_does_not(runs, capsys):
    rounded = _eval(capsys, runs / "delayed", "--round-delays")
    plain = _eval(capsys, runs / "delayed")
    assert rounded["delays_rounded"] is True and "delays_rounded" not in plain
    assert rounded["test_loss"] != plain["test_loss"]
    assert ds.evaluate(runs / "delayed", round_delays=True) == rounded


def test_rounded_eval_leaves_the_run_directory_as_it_was(runs, capsys):
    run = runs / "delayed"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    _eval(capsys, run, "--round-delays")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # checkpoint bytes included
    assert "checkpoint.pt" in before


def test_round_delays_on_a_net_without_delays_is_refused_in_one_line(runs, capsys):
    capsys.readouterr()
    assert main(["eval", str(runs / "plain"), "--round-delays"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"deepspike: error: run {runs / 'plain'} has no synaptic delays to round (its net has "
                                 "no Linear(delays=D) layer)\n")
    with pytest.raises(ds.ConfigError, match="has no synaptic delays to round"):
        ds.evaluate(runs / "plain", round_delays=True)


def test_a_nir_file_that_does_not_exist_is_named_as_missing(tmp_path, capsys):
    """A mistyped MODEL.nir with --data was told '--data: for a NIR file given in place of RUN_DIR, not a run
    directory', as if the path were a run directory."""
    missing = tmp_path / "modle.nir"
    assert main(["eval", str(missing), "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such NIR file or run directory" in err and err.count("\n") == 1
