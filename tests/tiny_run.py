"""A tiny stbp run on digits (two epochs) and a callback that stops it after the first epoch, shared by the
trainer tests, and ``full_and_resumed_weights``: a run trained uncut and cut then resumed."""

import pytest

from deepspike.training.runs import load_checkpoint
from deepspike.training.trainer import Trainer

TINY = [
    "method.name=stbp",
    "method.timesteps=3",
    "method.encoder=poisson",
    "method.loss=ce",
    "model.name=mlp",
    "model.args.hidden=[24]",
    "model.args.dropout=0.2",
    "data.name=digits",
    "data.augment.crop_padding=1",
    "data.val_fraction=0.1",
    "train.epochs=2",
    "train.batch_size=64",
    "train.progress=false",
    "optim.lr=0.01",
    "schedule.name=cosine",
]


class StopAfterFirstEpoch(Exception):
    pass


def _stop_after_first_epoch(trainer, record):
    if record["epoch"] == 1:
        raise StopAfterFirstEpoch  # as if the process died right after the checkpoint


def full_and_resumed_weights(config, tmp_path):
    """The final weights (checkpoint ``model`` entries) of ``config`` trained uncut in ``tmp_path/full`` and cut after
    epoch 1 then resumed in ``tmp_path/cut``; an exact resume gives equal tensors."""
    Trainer(config, tmp_path / "full").fit()
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(config, tmp_path / "cut", callbacks=(_stop_after_first_epoch,)).fit()
    Trainer(config, tmp_path / "cut", resume=True).fit()
    return (load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"],
            load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["model"])
