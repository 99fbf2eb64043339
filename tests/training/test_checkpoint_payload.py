"""Each field of a checkpoint is checked on load, with or without a checksum (``training.checkpoint_payload``).

Checkpoints without a checksum are accepted as files of older versions; a field of the wrong form in one gave a
traceback on ``--resume`` (epoch "abc", a bad generator state, a schedule state that is a string) or, worse, a
run that rewrote its history (epoch -1). Each is now a one-line ``DataCorruptError`` naming the field, exit 2.
"""

import shutil
import warnings

import numpy as np
import pytest
import torch

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import DataCorruptError
from deepspike.training.checkpoint_format import CHECKSUM_KEY
from deepspike.training.checkpoint_payload import payload_problem
from deepspike.training.runs import load_checkpoint, save_checkpoint
from deepspike.training.trainer import Trainer
from nested_edit import with_entry
from tiny_run import TINY

QUICK = [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run of one epoch (config.yaml, metrics.jsonl, checkpoint.pt) of the tiny stbp mlp."""
    run = tmp_path_factory.mktemp("payload") / "run"
    Trainer(load_config(None, QUICK), run).fit()
    return run


@pytest.fixture(scope="module")
def payload(tiny_run):
    """The tiny run's checkpoint payload as the trainer wrote it (checksum removed)."""
    state = torch.load(tiny_run / "checkpoint.pt", weights_only=True)
    del state[CHECKSUM_KEY]
    return state


def _old_checkpoint(tiny_run, tmp_path, payload, field, value):
    """A copy of the tiny run whose checkpoint, saved without checksum (as older versions did), has ``field``
    set to ``value``."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    torch.save(with_entry(payload, (field,), value), run / "checkpoint.pt")
    return run


RESUME_CASES = [  # the reviewer's reproductions: (field, value, message)
    ("epoch", "abc", "its epoch is 'abc', not an integer >= 1"),
    ("epoch", -1, "its epoch is -1, not an integer >= 1"),
    ("epoch", 0, "its epoch is 0, not an integer >= 1"),
    ("rng_per_rank", [{"python": "x"}],
     "its rng_per_rank[0]['python'] is 'x', not a state of Python's random module (random.getstate())"),
    ("scheduler", "x", "its scheduler is 'x', not a learning-rate schedule state"),
]


@pytest.mark.parametrize(("field", "value", "message"), RESUME_CASES)
def test_resume_refuses_a_bad_field_of_an_old_checkpoint_in_one_line(
    tiny_run, tmp_path, payload, capsys, field, value, message
):
    run = _old_checkpoint(tiny_run, tmp_path, payload, field, value)
    log = (run / "metrics.jsonl").read_text()
    assert main(["train", "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err == f"deepspike: error: checkpoint {run / 'checkpoint.pt'} is corrupt: {message}\n"
    assert (run / "metrics.jsonl").read_text() == log  # the run's history is kept


def test_eval_refuses_weights_that_are_not_tensors_in_one_line(tiny_run, tmp_path, payload, capsys):
    run = _old_checkpoint(tiny_run, tmp_path, payload, "model", {"body.0.weight": "x"})
    assert main(["eval", str(run)]) == 2
    assert capsys.readouterr().err == (f"deepspike: error: checkpoint {run / 'checkpoint.pt'} is corrupt: its "
                                       "model['body.0.weight'] is 'x', not a tensor\n")


def test_a_checksummed_checkpoint_is_checked_too(tmp_path, payload):
    """The checksum proves what was written, not that it was right (a bug, or a file made by hand)."""
    save_checkpoint(tmp_path / "c.pt", with_entry(payload, ("epoch",), "abc"))
    assert CHECKSUM_KEY in torch.load(tmp_path / "c.pt", weights_only=True)
    with pytest.raises(DataCorruptError, match="its epoch is 'abc', not an integer >= 1"):
        load_checkpoint(tmp_path / "c.pt")


def test_a_bad_old_checkpoint_is_refused_before_its_no_checksum_warning(tmp_path, payload):
    torch.save(with_entry(payload, ("epoch",), "abc"), tmp_path / "c.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataCorruptError, match="its epoch is 'abc'"):
            load_checkpoint(tmp_path / "c.pt")


def test_what_deepspike_writes_passes(payload):
    assert payload_problem(with_entry(payload, ("epoch",), 1)) is None
    assert payload_problem(with_entry(payload, ("best_val",), float("-inf"))) is None
    assert payload_problem({"model": payload["model"]}) is None  # zoo weights
    assert payload_problem({"model": payload["model"], "epoch": 0, "source_run": "ann"}) is None  # converted run
    old_rng = {**payload["rng_per_rank"][0], "numpy": np.random.RandomState(0).get_state()}  # keys: an ndarray
    assert payload_problem(with_entry(payload, ("rng_per_rank",), [old_rng])) is None


BAD_FIELDS = [  # (key path, value, start of the problem); ... removes the entry
    (("model",), "x", "model is 'x', not a state dict"),
    (("model", "extra"), 1.0, "model['extra'] is 1.0, not a tensor"),
    (("model", 3), torch.ones(1), "model has the key 3, not a parameter name"),
    (("ema",), {"average": {}, "updates": -1, "decay": 0.9}, "ema['updates'] is -1, not an integer >= 0"),
    (("ema",), {"updates": 1, "decay": 0.9}, "ema has no 'average' entry"),
    (("optimizer", "param_groups"), ..., "optimizer has no 'param_groups' entry"),
    (("optimizer", "param_groups"), [], "optimizer['param_groups'] is a list, not a non-empty list"),
    (("optimizer", "param_groups", 0, "lr"), "x", "optimizer['param_groups'][0]['lr'] is 'x', not a number"),
    (("optimizer", "param_groups", 0, "betas"), ("a", 1), "optimizer['param_groups'][0]['betas'] is a tuple"),
    (("optimizer", "param_groups", 0, "params"), ["a"], "optimizer['param_groups'][0]['params'] is a list, not a"),
    (("optimizer", "state"), {0: {"step": "x"}}, "optimizer['state'][0]['step'] is 'x', not a tensor or number"),
    (("optimizer", "state"), {"a": {}}, "optimizer['state'] has the key 'a', not a parameter index"),
    (("scheduler", "last_epoch"), 1.5, "scheduler['last_epoch'] is 1.5, not an integer >= -1"),
    (("scheduler", "base_lrs"), ["x"], "scheduler['base_lrs'] is a list, not a list of numbers"),
    (("scheduler", "lr_lambdas"), [{"f": 1}], "scheduler['lr_lambdas'] is a list, not a list of None"),
    (("scheduler", "optimizer"), 1, "scheduler['optimizer'] is 1, not a plain value of a schedule state"),
    (("scheduler", "_extra"), [1], "scheduler['_extra'] is a list, not a plain value"),
    (("epoch",), True, "epoch is True, not an integer >= 1"),
    (("epoch",), 2.0, "epoch is 2.0, not an integer >= 1"),
    (("train_seconds",), float("nan"), "train_seconds is nan, not a finite number >= 0"),
    (("train_seconds",), -1, "train_seconds is -1, not a finite number >= 0"),
    (("best_val",), "x", "best_val is 'x', not a number"),
    (("rng_per_rank",), [], "rng_per_rank is a list, not a non-empty list of random generator states"),
    (("rng_per_rank", 0), "x", "rng_per_rank[0] is 'x', not a random generator state"),
    (("rng_per_rank", 0, "numpy"), ("MT19937", [1] * 5, 0, 0, 0.0), "rng_per_rank[0]['numpy'] is not a state of Num"),
    (("rng_per_rank", 0, "torch"), torch.zeros(3, dtype=torch.uint8), "rng_per_rank[0]['torch'] is not a state of t"),
    (("rng_per_rank", 0, "cuda"), [torch.zeros(3)], "rng_per_rank[0]['cuda'] is a list, not a list of CUDA"),
    (("world_size",), 2, "world_size is 2, but rng_per_rank holds 1 states"),
    (("world_size",), 0, "world_size is 0, not an integer >= 1"),
    (("source_run",), 1, "source_run is 1, not a string"),
    (("quant_bits",), 0, "quant_bits is 0, not an integer >= 1"),
    (("teacher",), {"run": "/t", "checkpoint_sha256": 1}, "teacher is a dict, not {'run': str, 'checkpoint_sha256'"),
    (("teacher",), {"run": "/t"}, "teacher is a dict, not {'run': str, 'checkpoint_sha256': str}"),
]


@pytest.mark.parametrize(("path", "value", "problem"), BAD_FIELDS)
def test_a_field_not_of_its_form_is_named(payload, path, value, problem):
    assert payload_problem(with_entry(payload, path, value)).startswith(problem)


def test_the_ema_of_a_run_that_keeps_one_passes(payload):
    ema = {"average": payload["model"], "updates": 3, "decay": 0.99}
    assert payload_problem(with_entry(payload, ("ema",), ema)) is None
