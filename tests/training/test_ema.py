"""Weight averaging (train.ema_decay): the update against hand-computed values, the swap, and the Trainer
path (the average is what is evaluated, reloaded and resumed)."""

import json

import pytest
import torch
from torch import nn

from deepspike.config import load_config, save_config
from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.training.ema import WeightAverage
from deepspike.training.reload import evaluate_run, load_run
from deepspike.training.runs import load_checkpoint, save_checkpoint
from deepspike.training.trainer import Trainer
from tiny_run import TINY, StopAfterFirstEpoch, _stop_after_first_epoch


def _net():
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    return net


def test_update_matches_hand_computed_average():
    net = _net()
    ema = WeightAverage(net, decay=0.5)
    # step 1: d = min(0.5, 2/11) = 2/11; step 2: d = min(0.5, 3/12) = 1/4; step 3: d = min(0.5, 4/13) = 4/13
    expected = 1.0
    for value, d in ((3.0, 2 / 11), (5.0, 1 / 4), (-1.0, 4 / 13)):
        with torch.no_grad():
            net[0].weight.fill_(value)
            net[1].running_mean.fill_(value * 10)
        ema.update(net)
        expected = d * expected + (1 - d) * value
        assert ema.average["0.weight"].item() == pytest.approx(expected, rel=1e-6)
        assert ema.average["1.running_mean"].item() == value * 10  # buffers are copied, not averaged
    assert ema.average["1.num_batches_tracked"].item() == 0  # integer buffer, copied


def test_decay_caps_the_warm_up():
    net = _net()
    ema = WeightAverage(net, decay=0.9)
    ema.updates = 1000  # late in training: d = 0.9, not (1 + k)/(10 + k)
    with torch.no_grad():
        net[0].weight.fill_(2.0)
    ema.update(net)
    assert ema.average["0.weight"].item() == pytest.approx(0.9 * 1.0 + 0.1 * 2.0, rel=1e-6)


def test_swapped_restores_raw_weights_even_on_error():
    net = _net()
    ema = WeightAverage(net, decay=0.5)
    with torch.no_grad():
        net[0].weight.fill_(7.0)
    with pytest.raises(RuntimeError), ema.swapped(net):
        assert net[0].weight.item() == 1.0
        raise RuntimeError("boom")
    assert net[0].weight.item() == 7.0


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ConfigError, match="ema_decay"):
        load_config(None, [f"train.ema_decay={decay}"])
    with pytest.raises(ConfigError, match="decay"):
        WeightAverage(_net(), decay)


def test_trainer_evaluates_reloads_and_resumes_the_average(tmp_path):
    cfg = load_config(None, TINY + ["train.ema_decay=0.9"])
    summary = Trainer(cfg, tmp_path / "full").fit()
    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert summary["ema_decay"] == 0.9
    assert any(not torch.equal(v, full["ema"]["average"][k]) for k, v in full["model"].items())
    log = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all("test_accuracy_raw" in r for r in log)
    # the reported accuracy is the average's, and that is what reload/eval use
    assert evaluate_run(tmp_path / "full")["test_accuracy"] == summary["test_accuracy"]
    _, parts, _ = load_run(tmp_path / "full")
    for k, v in parts.model.state_dict().items():
        assert torch.equal(v, full["ema"]["average"][k]), k

    with pytest.raises(StopAfterFirstEpoch):
        Trainer(cfg, tmp_path / "cut", callbacks=(_stop_after_first_epoch,)).fit()
    Trainer(cfg, tmp_path / "cut", resume=True).fit()
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert cut["ema"]["updates"] == full["ema"]["updates"]
    for k, v in full["ema"]["average"].items():
        assert torch.equal(v, cut["ema"]["average"][k]), k


def test_resume_with_ema_needs_an_average_in_the_checkpoint(tmp_path):
    Trainer(load_config(None, TINY[:-3] + ["train.epochs=1"]), tmp_path / "run").fit()
    cfg = load_config(None, TINY + ["train.ema_decay=0.9"])
    with pytest.raises(ConfigError, match="--resume cannot change .*train.ema_decay"):
        Trainer(cfg, tmp_path / "run", resume=True)
    save_config(cfg, tmp_path / "run" / "config.yaml")  # the run's recipe edited by hand
    with pytest.raises(ConfigError, match="no weight average"):
        Trainer(cfg, tmp_path / "run", resume=True).fit()


def test_resume_with_an_average_that_does_not_fit_the_model_is_one_line(tmp_path):
    cfg = load_config(None, TINY + ["train.ema_decay=0.9"])
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(cfg, tmp_path / "run", callbacks=(_stop_after_first_epoch,)).fit()
    path = tmp_path / "run" / "checkpoint.pt"
    payload = load_checkpoint(path)
    name = next(iter(payload["ema"]["average"]))
    del payload["ema"]["average"][name]
    save_checkpoint(path, payload)  # a well-formed checkpoint (checksum, fields), of another model's average
    with pytest.raises(DataCorruptError, match=f"its weight average does not fit the model \\({name} is missing\\)"):
        Trainer(cfg, tmp_path / "run", resume=True).fit()
