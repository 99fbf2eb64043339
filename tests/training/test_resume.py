"""``training.resume``: a checkpoint whose optimizer or schedule state does not fit the run is refused in one line
before anything trains. Such a file passes the checksum when made by hand (or has none, from an older version); it
used to load, then fail at the first optimizer or schedule step with a traceback (exit 1)."""

import shutil

import pytest
import torch

from deepspike.cli import main
from deepspike.config import OptimConfig
from deepspike.layers.delays import DelayedLinear
from deepspike.training.checkpoint_format import CHECKSUM_KEY
from deepspike.training.optim import make_optimizer
from deepspike.training.resume import optimizer_state_problem
from deepspike.training.runs import save_checkpoint
from nested_edit import with_entry

QUICK = ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "train.epochs=1", "train.batch_size=64",
         "train.max_steps_per_epoch=2", "train.progress=false", "optim.name=adam"]


@pytest.fixture(scope="module")
def adam_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    return run


DOES_NOT_FIT = [  # (where in the payload, value, the end of the one-line error); the first layer's weight is [8, 64]
    (("optimizer", "state", 0, "exp_avg"), torch.zeros(3), "parameter 0 of group 0's exp_avg is [3], the parameter "
                                                           "[8, 64])"),
    (("optimizer", "state", 0, "exp_avg"), ..., "parameter 0 of group 0 has the slots ['exp_avg_sq', 'step'], a step "
                                               "keeps ['exp_avg', 'exp_avg_sq', 'step'])"),
    (("optimizer", "state", 0, "step"), torch.tensor([1.0, 2.0]), "parameter 0 of group 0's step is [2], not one "
                                                                  "number)"),
    (("scheduler", "base_lrs"), [0.1, 0.2, 0.3], "the schedule's base_lrs has 3 rates for 1 parameter group(s))"),
]


@pytest.mark.parametrize(("path", "value", "message"), DOES_NOT_FIT)
def test_an_optimizer_or_schedule_state_that_does_not_fit_is_one_line_and_keeps_the_run(
    adam_run, tmp_path, capsys, path, value, message
):
    run = tmp_path / "run"
    shutil.copytree(adam_run, run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    del payload[CHECKSUM_KEY]
    save_checkpoint(run / "checkpoint.pt", with_entry(payload, path, value))  # checksummed: made by hand
    log = (run / "metrics.jsonl").read_text()
    assert main(["train", "--out", str(run), "--resume", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert err == (f"deepspike: error: {run / 'checkpoint.pt'}: its optimizer or schedule state does not fit the run "
                   f"({message}\n")
    assert (run / "metrics.jsonl").read_text() == log


@pytest.mark.parametrize("settings", [{"name": "sgd", "momentum": 0.9}, {"name": "sgd", "momentum": 0.0},
                                      {"name": "adam"}, {"name": "adamw", "weight_decay": 0.01}])
def test_the_state_a_step_leaves_fits(settings):
    """What each optimizer keeps after real steps passes, the delay positions' own group included; a fresh optimizer
    (no state yet) too."""
    layer = DelayedLinear(3, 2, 4)
    optimizer = make_optimizer(OptimConfig(**settings, lr=0.01), layer.parameters())
    assert optimizer_state_problem(optimizer) is None
    for _ in range(2):
        layer(torch.rand(5, 4, 3)).sum().backward()
        optimizer.step()
    assert optimizer_state_problem(optimizer) is None
    restored = make_optimizer(OptimConfig(**settings, lr=0.01), layer.parameters())
    restored.load_state_dict(optimizer.state_dict())
    assert optimizer_state_problem(restored) is None
