"""``train.log``: metrics.csv says what metrics.jsonl says (after a resume too), TensorBoard gets the scalars."""

import csv
import json
import sys

import pytest

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.training.trainer import Trainer
from tiny_run import TINY, StopAfterFirstEpoch, _stop_after_first_epoch


def test_csv_and_tensorboard_follow_the_log_through_a_resume(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(None, [*TINY, "train.log=[csv,tensorboard]"])
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(cfg, tmp_path / "run", callbacks=(_stop_after_first_epoch,)).fit()
    Trainer(cfg, tmp_path / "run", resume=True).fit()
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["test_accuracy"]) for r in rows] == [r["test_accuracy"] for r in log]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    points = events.Scalars("test/accuracy")
    assert [p.step for p in points] == [1, 2]
    assert [p.value for p in points] == pytest.approx([r["test_accuracy"] for r in log])


def test_unknown_sink_is_refused():
    with pytest.raises(ConfigError, match="train.log"):
        load_config(None, ["train.log=[wandb]"])
    with pytest.raises(ConfigError, match="expected a list"):
        load_config(None, ["train.log=csv"])
    assert load_config(None, ["train.log=[csv]"]).train.log == ["csv"]


def test_a_sink_that_cannot_open_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    """tensorboard not installed: one line, and the new run takes back what it wrote (its config.yaml used to stay,
    and the same --out was then refused as 'a run that finished no epoch')."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it raises ImportError
    argv = ["train", *TINY, "train.log=[tensorboard]", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("deepspike: error: train.log=tensorboard needs")
    assert not (tmp_path / "run").exists()
    assert main(["train", *TINY, "--out", str(tmp_path / "run")]) == 0
