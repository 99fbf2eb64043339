"""A checkpoint of another model or width is one line naming the checkpoint and the first key that does not
fit (issue 19, item 12), in ``eval`` (reload) and ``--resume`` alike."""

import re
import shutil

import pytest
import torch

from deepspike.cli import main
from deepspike.core.errors import DataCorruptError
from deepspike.training.weights import first_mismatch, load_weights

QUICK = ["method.name=ann", "model.name=mlp", "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, hidden in (("narrow", "[8]"), ("wide", "[16]"), ("deep", "[8,8]")):
        assert main(["train", *QUICK, f"model.args.hidden={hidden}", "--out", str(root / name)]) == 0
    return root


@pytest.mark.parametrize("source, expected", [
    ("wide", r"checkpoint.pt does not fit the model its run's config.yaml builds: \S+ has shape \[16, 64\] in the "
             r"checkpoint, \[8, 64\] in the model"),
    ("deep", r"checkpoint.pt does not fit .*: 3.weight has shape \[8, 8\] in the checkpoint, \[10, 8\] in the model"),
])
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_checkpoint_of_another_width_or_model(runs, tmp_path, capsys, source, expected, command):
    run = tmp_path / "narrow"
    shutil.copytree(runs / "narrow", run)
    shutil.copy(runs / source / "checkpoint.pt", run / "checkpoint.pt")
    argv = ["eval", str(run)] if command == "eval" else ["train", "--out", str(run), "--resume", "train.epochs=2"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"deepspike: error: {run / 'checkpoint.pt'} does not fit")
    assert re.search(expected, err), err


def test_first_mismatch_and_load_weights():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert first_mismatch(net.state_dict(), state) is None
    assert first_mismatch(net.state_dict(), {**state, "2.weight": torch.zeros(1)}) == (
        "2.weight is in the checkpoint but not in the model")
    missing = dict(state)
    del missing["1.bias"]
    assert first_mismatch(net.state_dict(), missing) == "1.bias is missing"
    assert first_mismatch(net.state_dict(), [1, 2]) == "the weights are a list, not a state dict"
    with pytest.raises(DataCorruptError, match=r"c.pt does not fit .*: 0.weight has shape \[2, 4\]"):
        load_weights(net, {**state, "0.weight": torch.zeros(2, 4)}, "c.pt")
    state["0.bias"] += 1
    load_weights(net, state, "c.pt")
    assert torch.equal(net[0].bias, state["0.bias"])


def test_first_mismatch_names_a_tensor_of_another_dtype():
    """A tensor of the right shape and another dtype was loaded, cast in silence: an int64 weight, and a float
    count in a uint8 buffer that wrapped (300.7 -> 44); now the first such key is named with both dtypes."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    net.register_buffer("count", torch.zeros(2, dtype=torch.uint8))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert first_mismatch(net.state_dict(), state) is None
    assert first_mismatch(net.state_dict(), {**state, "0.weight": torch.ones(2, 3, dtype=torch.int64)}) == (
        "0.weight has dtype torch.int64 in the checkpoint, torch.float32 in the model")
    with pytest.raises(DataCorruptError, match=r"c.pt does not fit .*: count has dtype torch.float32 in the "
                                               r"checkpoint, torch.uint8 in the model"):
        load_weights(net, {**state, "count": torch.tensor([300.7, 1.0])}, "c.pt")
    assert net.count.tolist() == [0, 0]
