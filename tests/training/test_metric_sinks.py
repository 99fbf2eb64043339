"""``train.log``: metrics.csv says what metrics.jsonl says (after a resume too), TensorBoard gets the scalars."""

import csv
import json
import sys

import pytest

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import ConfigError, TrainingDiverged
from deepspike.training import trainer as trainer_module
from deepspike.training.metric_sinks import MetricSinks
from deepspike.training.runs import RunDir
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


def test_a_resume_that_adds_tensorboard_writes_the_epochs_trained_before_it(tmp_path):
    """The csv sink added at a resume gets the whole table; TensorBoard got only the epochs trained after the resume
    (a run cut after epoch 1 and resumed with train.log=[tensorboard] showed step 2 alone; a finished run, none)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def steps_and_values(run):
        events = EventAccumulator(str(run / "tensorboard"))
        events.Reload()
        return [(p.step, p.value) for p in events.Scalars("test/accuracy")]

    def logged(run):
        return [(r["epoch"], pytest.approx(r["test_accuracy"]))
                for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]

    cut, finished = tmp_path / "cut", tmp_path / "finished"
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(load_config(None, TINY), cut, callbacks=(_stop_after_first_epoch,)).fit()
    Trainer(load_config(None, [*TINY, "train.log=[tensorboard]"]), cut, resume=True).fit()
    assert steps_and_values(cut) == logged(cut) and len(logged(cut)) == 2
    Trainer(load_config(None, TINY), finished).fit()
    Trainer(load_config(None, [*TINY, "train.log=[tensorboard]"]), finished, resume=True).fit()
    assert steps_and_values(finished) == logged(finished) and len(logged(finished)) == 2
    Trainer(load_config(None, [*TINY, "train.log=[tensorboard]"]), finished, resume=True).fit()  # no step twice
    assert steps_and_values(finished) == logged(finished)


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


def _cut_at_epoch_2_and_resumed_to_diverge(run, first_log, resumed_log, monkeypatch):
    """Train ``run`` (TINY, ``train.log=first_log``) killed after epoch 2's log line and sinks but before its
    checkpoint, then resume it with ``train.log=resumed_log`` to diverge in epoch 2: the log keeps epoch 1 only."""
    write_checkpoint = RunDir.write_checkpoint

    def killed_at_epoch_2(self, payload):
        if payload["epoch"] == 2:
            raise StopAfterFirstEpoch
        write_checkpoint(self, payload)

    def diverges(*args):
        raise TrainingDiverged("training diverged at epoch 2, step 1")

    with monkeypatch.context() as patched:
        patched.setattr(RunDir, "write_checkpoint", killed_at_epoch_2)
        with pytest.raises(StopAfterFirstEpoch):
            Trainer(load_config(None, [*TINY, f"train.log={first_log}"]), run).fit()
    with monkeypatch.context() as patched:
        patched.setattr(trainer_module, "run_epoch", diverges)
        with pytest.raises(TrainingDiverged):
            Trainer(load_config(None, [*TINY, f"train.log={resumed_log}"]), run, resume=True).fit()
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]


@pytest.mark.parametrize("resumed_log", ["[csv]", "[]"])
def test_the_csv_drops_a_resumed_runs_unfinished_epoch_before_training_on(resumed_log, tmp_path, monkeypatch):
    """Killed after epoch 2's log line and CSV row but before its checkpoint: the resume drops the line from the log,
    and the CSV kept the row until the next epoch ended, so a resumed run stopped in that epoch (diverged, killed) left
    a table with an epoch the log does not have; a resume without the csv sink kept the row for good. A resume that
    adds csv to a finished run now writes the table too."""
    run = tmp_path / "run"
    _cut_at_epoch_2_and_resumed_to_diverge(run, "[csv]", resumed_log, monkeypatch)
    assert [int(r["epoch"]) for r in csv.DictReader((run / "metrics.csv").open())] == [1]
    if resumed_log == "[]":
        return
    finished = tmp_path / "finished"
    Trainer(load_config(None, TINY), finished).fit()
    Trainer(load_config(None, [*TINY, "train.log=[csv]"]), finished, resume=True).fit()
    assert [int(r["epoch"]) for r in csv.DictReader((finished / "metrics.csv").open())] == [1, 2]


def test_a_resume_without_tensorboard_purges_the_events_of_the_epochs_the_log_dropped(tmp_path, monkeypatch):
    """As the csv: a run resumed without the tensorboard sink kept the events of an epoch the log dropped (steps
    [1, 2] for a log of epoch 1); they are now purged, the log's epochs written again, and nothing after."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    _cut_at_epoch_2_and_resumed_to_diverge(run, "[tensorboard]", "[]", monkeypatch)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [p.step for p in events.Scalars("test/accuracy")] == [1]


def test_a_restarted_run_drops_the_csv_row_of_the_epoch_it_trains_again(tmp_path, monkeypatch):
    """Killed after epoch 1's log line and CSV row but before the first checkpoint: the resume restarts from epoch 0
    and empties the log; the table must lose its row too (it kept it while the fix of resumed runs skipped a log
    with no epoch left)."""
    cfg = load_config(None, [*TINY, "train.log=[csv]"])
    run = tmp_path / "run"

    def killed_at_epoch_1(self, payload):
        raise StopAfterFirstEpoch

    monkeypatch.setattr(RunDir, "write_checkpoint", killed_at_epoch_1)
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(cfg, run).fit()
    assert len(list(csv.DictReader((run / "metrics.csv").open()))) == 1
    monkeypatch.undo()

    def diverges(*args):
        raise TrainingDiverged("training diverged at epoch 1, step 1")

    monkeypatch.setattr(trainer_module, "run_epoch", diverges)
    with pytest.raises(TrainingDiverged):
        Trainer(cfg, run, resume=True).fit()
    assert (run / "metrics.jsonl").read_text() == ""
    assert list(csv.DictReader((run / "metrics.csv").open())) == []


def test_a_resumed_run_that_fails_closes_its_sinks_and_keeps_its_folder(tmp_path, monkeypatch):
    """The sinks were closed when a run ended well or a new one was discarded; a resumed run that failed (its folder
    kept) left its TensorBoard writer open in the process."""
    pytest.importorskip("tensorboard")
    cfg = load_config(None, [*TINY, "train.log=[tensorboard]"])
    with pytest.raises(StopAfterFirstEpoch):
        Trainer(cfg, tmp_path / "run", callbacks=(_stop_after_first_epoch,)).fit()
    closed = []
    close = MetricSinks.close
    monkeypatch.setattr(MetricSinks, "close", lambda self: closed.append(self.board is not None) or close(self))

    def diverge(*args, **kwargs):
        raise TrainingDiverged("the loss is nan")

    monkeypatch.setattr(trainer_module, "run_epoch", diverge)
    with pytest.raises(TrainingDiverged):
        Trainer(cfg, tmp_path / "run", resume=True).fit()
    assert closed == [True]  # the open writer, closed once
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_logged_number_past_float_range_is_left_out_of_tensorboard_as_of_the_csv(tmp_path):
    """A resume writes the log's earlier epochs to TensorBoard; the log is strict JSON, which holds a whole number
    past float's range (10**400): add_scalar raised OverflowError ('int too large to convert to float'), a traceback
    through the resume. It is now left out, as the csv leaves a non-finite number empty."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sinks = MetricSinks(tmp_path, ("tensorboard",), [{"epoch": 1, "test_accuracy": 10**400, "test_loss": 0.5},
                                                    {"epoch": 2, "test_accuracy": 0.75, "test_loss": 0.25}])
    sinks.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(p.step, p.value) for p in events.Scalars("test/accuracy")] == [(2, 0.75)]
    assert [(p.step, p.value) for p in events.Scalars("test/loss")] == [(1, 0.5), (2, 0.25)]
