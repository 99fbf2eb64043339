"""A small wta_stdp run (Diehl & Cook's network) on digits, shared by the tests of the method and of the commands
that refuse it: 40 neurons, 100 ms shows (200 steps) at a rate that suits 64 inputs, seconds per epoch."""

from deepspike.config.load import load_config
from deepspike.training.trainer import Trainer

SMALL = ["method.name=wta_stdp", "method.present_ms=100", "method.rate_max=500", "method.rate_step=250",
         "method.label_window=500", "model.name=diehl_cook", "model.args.neurons=40", "data.name=digits",
         "train.epochs=2", "train.batch_size=100", "train.progress=false", "train.device=cpu"]


def trained_wta_run(folder, *overrides: str):
    """Train ``SMALL`` (with ``overrides``) into ``folder``; returns the folder."""
    Trainer(load_config(None, [*SMALL, *overrides]), folder).fit()
    return folder
