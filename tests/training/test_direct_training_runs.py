"""A tdBN + TET stbp run on digits trains, checkpoints and reloads to the same test accuracy; resume continues."""

import json

import pytest

from deepspike import api

RUN = [
    "method.name=stbp", "method.timesteps=2", "method.loss=tet", "method.readout=membrane", "method.norm=tdbn",
    "method.tet_lambda=0.05", "model.name=vgg", "model.args.blocks=[[8]]", "model.args.hidden=[]",
    "data.name=digits", "train.epochs=1", "train.batch_size=64", "train.progress=false", "train.max_steps_per_epoch=3",
]


@pytest.mark.parametrize("norm", ["tdbn", "tebn"])
def test_run_reloads_to_its_accuracy_and_resumes(norm, tmp_path):
    summary = api.train(None, tmp_path / "run", [*RUN, f"method.norm={norm}"])
    assert api.evaluate(tmp_path / "run")["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    resumed = api.train(None, tmp_path / "run", ["train.epochs=2"], resume=True)
    assert resumed["epochs"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


def test_summary_counts_the_batchnorm_and_plif_parameters(tmp_path):
    summary = api.train(None, tmp_path / "run", [*RUN, "method.neuron=plif", "method.neuron_params=layer"])
    # beyond the conv and linear weights: tdBN's scale and shift for 8 channels, one PLIF decay for the one
    # neuron layer (the membrane readout has no neuron)
    assert summary["trainable_parameters"] - summary["parameters"] == 2 * 8 + 1
