"""A tiny stbp run on digits (two epochs) and a callback that stops it after the first epoch, shared by the
trainer tests."""

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
