"""Reloading a run to evaluate it (``training.reload``): a checkpoint without the entries it reads is one line."""

import shutil

import pytest
import torch

from deepspike.api import load_run
from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.training.checkpoint_format import CHECKSUM_KEY, read_checkpoint_file
from deepspike.training.reload import RunInputCheck, evaluate_run
from deepspike.training.runs import save_checkpoint
from deepspike.training.trainer import Trainer
from tiny_run import TINY


def test_eval_of_a_checkpoint_without_its_epoch_is_one_line(tmp_path, capsys):
    """An epoch-less checkpoint (by hand, or of an older tool) gave ``KeyError: 'epoch'``."""
    run = tmp_path / "run"
    Trainer(load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"]), run).fit()
    assert main(["eval", str(run)]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    del state[CHECKSUM_KEY], state["epoch"]
    copy_ = tmp_path / "copy"
    shutil.copytree(run, copy_)
    torch.save(state, copy_ / "checkpoint.pt")
    capsys.readouterr()
    with pytest.warns(UserWarning, match="has no checksum"):  # it is accepted as a file of an older version
        assert main(["eval", str(copy_)]) == 2
    assert capsys.readouterr().err == (f"deepspike: error: {copy_ / 'checkpoint.pt'} has no 'epoch' entry: it is not "
                                       "a deepspike training checkpoint\n")


def test_scoring_the_training_split_neither_augments_nor_mixes(tmp_path):
    """``deepspike eval --split train`` scores the training data as it is, with crops and MixUp on in the recipe
    (mixed labels would not even score): the accuracy of the model on the stored training images."""
    out = tmp_path / "run"
    Trainer(load_config(None, [*TINY, "method.encoder=direct", "train.epochs=1", "data.augment.mixup=0.4"]),
            out).fit()
    result = evaluate_run(out, split="train")
    _, parts = load_run(out)
    with torch.no_grad():
        predicted = parts.method.predict(parts.model.eval()(parts.data.train.x))
    assert result["train_accuracy"] == pytest.approx(float((predicted == parts.data.train.y).float().mean()))


def test_a_checkpoint_with_nan_weights_under_a_valid_checksum_is_corrupt(tmp_path, capsys):
    """Training stops before it saves non-finite weights, so such a file was edited; ``eval`` loaded it and
    scored it (the arg-max of NaN outputs) instead of saying so."""
    run = tmp_path / "run"
    Trainer(load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=2"]), run).fit()
    state = read_checkpoint_file(run / "checkpoint.pt")
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key].view(-1)[-1] = float("inf")
    save_checkpoint(run / "checkpoint.pt", state)  # a checksum of the edited weights
    capsys.readouterr()
    assert main(["eval", str(run)]) == 2
    assert capsys.readouterr().err == (f"deepspike: error: {run / 'checkpoint.pt'} is corrupt: its {key} holds inf "
                                       "or nan\n")


def test_a_new_run_with_a_setting_it_would_ignore_is_refused_before_it_writes(tmp_path, capsys):
    """``optim.momentum`` under adam trained as if it were not there (``config.schema.check_settings_used``)."""
    out = tmp_path / "run"
    assert main(["train", "optim.momentum=0.5", "model.name=mlp", "train.epochs=1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("deepspike: error: optim.momentum=0.5 has no effect unless optim.name=sgd: set "
                                       "that, or leave optim.momentum at its default 0.9\n")
    assert not (out / "config.yaml").exists()


@pytest.mark.parametrize(("shape", "steps", "good", "bad", "message"), [
    ((1, 8, 8), None, [(3, 1, 8, 8)], [(1, 8, 8), (3, 64), (3, 3, 8, 8), (2, 3, 1, 8, 8)], r"images \[B, 1, 8, 8\]"),
    ((700,), 25, [(2, 25, 700), (2, 700)], [(2, 25, 70), (25, 700, 1), (700,)],
     r"sequences \[B, T, 700\] \(its data hold T = 25 steps\)"),
    ((2, 4, 4), 6, [(3, 6, 2, 4, 4), (3, 2, 4, 4)], [(3, 6, 4, 4), (6, 2, 4, 4, 1)],
     r"event frames \[B, T, 2, 4, 4\] \(its data hold T = 6 steps\)"),
])
def test_a_reloaded_runs_net_refuses_input_not_shaped_as_its_data_in_one_line(shape, steps, good, bad, message):
    """The net of ``ds.load_run`` given a wrong shape stopped in torch ("mat1 and mat2 shapes cannot be multiplied"),
    or scored it: a [1, 8, 8] image without its channel as a batch of one, a flat [3, 64] batch. Sequence and
    event-frame runs take their time axis, or none (the population encoder codes static samples)."""
    net = torch.nn.Linear(1, 1)
    check = RunInputCheck("runs/r", shape, steps)
    for ok in good:
        assert check(net, (torch.zeros(ok),)) is None
    for wrong in bad:
        with pytest.raises(ConfigError, match=rf"^run runs/r takes {message}, got \[[^\n]*$"):
            check(net, (torch.zeros(wrong),))
    with pytest.raises(ConfigError, match=r"of floating-point values, got torch.int64"):
        check(net, (torch.zeros(good[0], dtype=torch.int64),))
    # float64 images stopped a ttfs_window net in its first layer: cast to the weights' dtype, as the rate nets do
    (cast,) = check(net, (torch.zeros(good[0], dtype=torch.float64),))
    assert cast.dtype == torch.float32 and check(net, (torch.zeros(good[0]),)) is None


def test_integer_event_frames_are_told_to_cast_not_to_divide_by_255():
    """uint8 event frames (``EventFrameDataset.x``, counts the data set casts as they are) were told "uint8 images:
    divide by 255", which scales every count to 1/255 of what the net was trained on; images keep that advice."""
    net = torch.nn.Linear(1, 1)
    frames = torch.zeros(2, 6, 2, 4, 4, dtype=torch.uint8)
    with pytest.raises(ConfigError, match=r"got torch.uint8 \(event counts: x.float\(\), as the run's data set casts"):
        RunInputCheck("runs/r", (2, 4, 4), 6)(net, (frames,))
    with pytest.raises(ConfigError, match=r"got torch.uint8 \(uint8 images: divide by 255\)$"):
        RunInputCheck("runs/r", (1, 8, 8), None)(net, (torch.zeros(3, 1, 8, 8, dtype=torch.uint8),))
