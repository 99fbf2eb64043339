"""``ttfs``/``stdbp`` through the one Trainer on digits: measures land in metrics.jsonl and summary.json."""

import json

import pytest

from deepspike.config import load_config
from deepspike.training.trainer import Trainer


@pytest.mark.parametrize("method", ["ttfs", "stdbp"])
def test_trainer_logs_ttfs_measures(tmp_path, method):
    cfg = load_config(None, [
        f"method.name={method}", "method.measure_batches=2", "model.name=zhang2021_fc340", "model.width=0.1",
        "data.name=digits", "train.epochs=1", "train.batch_size=32", "train.max_steps_per_epoch=3",
        "train.eval_batch_size=200", "train.progress=false", "optim.lr=0.001",
    ])
    summary = Trainer(cfg, tmp_path / "run").fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1]
    for r in records:
        assert 0.0 <= r["spiking_fraction"] <= 1.0 and 0.0 <= r["dead_fraction"] <= 1.0
        assert 0.0 <= r["hidden_before_decision"] <= 1.0
        assert r["latency"] is None or r["latency"] > 0  # JSON null when no output spiked at all
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["method"] == method and "dead_fraction" in saved and "latency" in saved
    assert 0.0 <= summary["test_accuracy"] <= 1.0
