import random

import pytest
import torch

from deepspike.config import load_config
from deepspike.core.errors import UnusedOptionError
from deepspike.training import training_setup
from deepspike.training.distributed import DistContext
from deepspike.training.runtime import seed_everything
from deepspike.training.training_setup import build_training
from tiny_run import TINY


def test_the_seeded_python_stream_does_not_depend_on_what_loading_the_data_imported(monkeypatch):
    """Loading digits the first time in a process imports sklearn.datasets, whose rich.style takes 24 bits of Python's
    random at import: the same seed gave another Python stream after the setup depending on whether sklearn had been
    imported before. A data load that draws (the first import, simulated) now leaves the stream as seeded."""
    config = load_config(None, [*TINY, "train.epochs=1"])
    seed_everything(config.train.seed)
    seeded = random.getstate()
    load_data = training_setup.load_data

    def first_import_draws(config):
        random.getrandbits(24)
        return load_data(config)

    monkeypatch.setattr(training_setup, "load_data", first_import_draws)
    build_training(config, DistContext(), torch.device("cpu"), resume=False)
    assert random.getstate() == seeded


def test_settings_a_new_run_would_ignore_are_refused_before_the_data_is_read(monkeypatch):
    """``method.levels=4`` with a ReLU ann (or ``optim.momentum`` with adam) was refused by ``build_new_run``, after
    the data set was read: a missing folder was reported instead, and a recipe's data set downloaded first."""
    def no_data(config):
        raise AssertionError("the data was read")

    monkeypatch.setattr(training_setup, "load_data", no_data)
    ann = ["method.name=ann", *(item for item in TINY if not item.startswith("method."))]
    for overrides, message in (([*ann, "method.levels=4"], r"^method\.levels=4 has no effect unless"),
                               ([*TINY, "optim.momentum=0.5"], r"^optim\.momentum=0\.5 has no effect unless")):
        config = load_config(None, overrides)
        with pytest.raises(UnusedOptionError, match=message):
            build_training(config, DistContext(), torch.device("cpu"), resume=False)
