"""Fixtures of the export tests: one tiny trained run (stbp, an MLP with 8 LIF neurons, one step of digits)."""

from __future__ import annotations

import pytest

from deepspike.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=2", "model.name=mlp", "model.args.hidden=[8]",
                 "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false", "--out", str(run)]) == 0
    return run
