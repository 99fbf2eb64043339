"""``train.compile``: a compiled run trains the weights of an eager run, checkpoints the plain module's weights (which
``deepspike eval`` scores uncompiled), resumes exactly, trains data-parallel, and refuses the online temporal-gradient
modes in one line."""

import json

import pytest
import torch
from torch._dynamo.utils import counters

from deepspike import api
from deepspike.cli import main
from deepspike.config import load_config
from deepspike.training.runs import load_checkpoint
from deepspike.training.trainer import Trainer
from tiny_run import TINY, full_and_resumed_weights
from torchrun import one_and_two_processes

# Poisson input, dropout and augmentation: the random draws of a compiled run must be eager's (fallback_random).
QUICK = [*TINY, "train.max_steps_per_epoch=3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The QUICK run trained eagerly (``eager``) and compiled (``compiled``): ``(folder, summaries)``."""
    root = tmp_path_factory.mktemp("compile")
    summaries, graphs = {}, []
    for name, setting in (("eager", "false"), ("compiled", "true")):
        before = counters["stats"]["unique_graphs"]
        summaries[name] = Trainer(load_config(None, [*QUICK, f"train.compile={setting}"]), root / name).fit()
        graphs.append(counters["stats"]["unique_graphs"] - before)
    assert graphs[0] == 0 and graphs[1] > 0  # the compiled run did compile (and the eager one did not)
    return root, summaries


def _log(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_compiled_run_trains_the_weights_of_an_eager_run(runs):
    root, summaries = runs
    eager = load_checkpoint(root / "eager" / "checkpoint.pt")
    compiled = load_checkpoint(root / "compiled" / "checkpoint.pt")
    assert list(compiled["model"]) == list(eager["model"])  # the plain module's keys: no "_orig_mod." prefix
    for key, value in eager["model"].items():
        torch.testing.assert_close(compiled["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    for mine, theirs in zip(_log(root / "compiled"), _log(root / "eager"), strict=True):
        for key in ("train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "test_loss"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-5), key
    assert summaries["compiled"]["test_accuracy"] == pytest.approx(summaries["eager"]["test_accuracy"])


def test_compiled_checkpoint_loads_and_evaluates_without_compile(runs, capsys):
    root, summaries = runs
    config, parts = api.load_run(root / "compiled", device="cpu")
    assert config.train.compile is True
    assert not any(name.startswith("_orig_mod") for name in parts.model.state_dict())
    assert api.evaluate(root / "compiled")["test_accuracy"] == pytest.approx(summaries["compiled"]["test_accuracy"])
    capsys.readouterr()
    assert main(["eval", str(root / "compiled")]) == 0


def test_compiled_resume_is_exact(tmp_path):
    full, resumed = full_and_resumed_weights(load_config(None, [*QUICK, "train.compile=default"]), tmp_path)
    for key, value in full.items():
        assert torch.equal(resumed[key], value), key


@pytest.mark.parametrize("temporal_grad", ["sltt", "ottt"])
def test_online_temporal_grads_are_refused_in_one_line(temporal_grad, tmp_path, capsys):
    run = tmp_path / "R"
    args = [*QUICK, "method.encoder=direct", "train.compile=true", f"train.temporal_grad={temporal_grad}"]
    assert main(["train", *args, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"deepspike: error: train.compile=true with train.temporal_grad={temporal_grad}: the "
                          "online modes run the net one step at a time")
    assert not run.exists()


@pytest.mark.parametrize("value", ["fast", "3", "null"])
def test_a_bad_compile_value_is_one_line_and_exit_2(value, tmp_path, capsys):
    assert main(["train", *QUICK, f"train.compile={value}", "--out", str(tmp_path / "R")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.compile" in err


@pytest.mark.parametrize(("value", "taken"), [("false", False), ("true", True), ("default", "default"),
                                              ("reduce-overhead", "reduce-overhead"), ("max-autotune", "max-autotune")])
def test_compile_takes_a_bool_or_a_mode(value, taken):
    assert load_config(None, [f"train.compile={value}"]).train.compile == taken


@pytest.mark.timeout(300)
def test_two_compiled_processes_match_one(tmp_path):
    """DistributedDataParallel around the compiled module (2 gloo ranks) ends with one process's weights."""
    recipe = ["method.name=stbp", "method.timesteps=2", "method.encoder=direct", "model.name=mlp",
              "model.args.hidden=[32]", "data.name=digits", "optim.name=sgd", "optim.lr=0.1", "train.epochs=1",
              "train.batch_size=50", "train.max_steps_per_epoch=3", "train.progress=false", "train.compile=true"]
    one, two = (c["model"] for c in one_and_two_processes(recipe, tmp_path, timeout=280))
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5, msg=key)
