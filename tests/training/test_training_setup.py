import random

import torch

from deepspike.config import load_config
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
