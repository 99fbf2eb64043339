"""One trainer per run folder: a second one, while the first trains, is refused in one line and writes nothing."""

import errno
import os
import shutil

import pytest

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.training import run_lock, trainer
from deepspike.training.run_lock import RunLock
from deepspike.training.runs import LOCK_NAME, RunDir
from deepspike.training.trainer import Trainer
from tiny_run import TINY


def test_a_held_lock_refuses_a_second_one_until_released(tmp_path):
    first = RunLock(tmp_path)
    with pytest.raises(ConfigError, match="is being trained by another deepspike process"):
        RunLock(tmp_path)  # flock is per open file: a second open in the same process conflicts as another would
    first.release()
    first.release()  # twice is harmless
    RunLock(tmp_path).release()


def test_a_run_being_trained_is_not_trained_into_by_a_second_command(tmp_path, capsys):
    """Two `train --out` at once used to both pass the free-folder check and interleave their epochs in one log."""
    run = tmp_path / "run"
    run.mkdir()
    other = RunLock(run)  # the first trainer, still loading its data or training
    try:
        assert main(["train", *TINY, "--out", str(run)]) == 2
        err = capsys.readouterr().err.splitlines()[-1]
        assert err == f"deepspike: error: {run} is being trained by another deepspike process; wait for it to end " \
                      "or pick another --out"
        assert RunDir(run).run_files() == []  # nothing written
    finally:
        other.release()
    assert main(["train", *TINY, "--out", str(run)]) == 0
    assert main(["train", "--out", str(run), "--resume", "train.epochs=2"]) == 0  # released after each command
    assert [r["epoch"] for r in RunDir(run).metrics.read()] == [1, 2]
    assert (run / LOCK_NAME).is_file()


def test_a_file_system_without_flock_trains_unlocked(tmp_path, monkeypatch):
    """Lustre without -o flock answers ENOSYS: that is no other trainer, so the run goes on (unlocked)."""
    def no_flock(fd, operation):
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(run_lock.fcntl, "flock", no_flock)
    lock = RunLock(tmp_path)
    assert lock.fd is None
    lock.release()


def test_a_run_another_process_trained_meanwhile_is_refused_under_the_lock(tmp_path, capsys):
    """The folder is checked when the Trainer is made and again under the lock, after the data loaded: here a run
    killed before its first checkpoint (a restart) got its first epoch from another process in between."""
    run = tmp_path / "run"
    cfg = load_config(None, TINY)
    first = Trainer(cfg, run)
    first.run.write_checkpoint = _killed
    with pytest.raises(_Killed):
        first.fit()
    restart = Trainer(load_config(run / "config.yaml"), run, resume=True)  # no checkpoint yet: a restart
    assert main(["train", "--out", str(run), "--resume"]) == 0  # the other process trains it meanwhile
    log = (run / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match=f"^{run} changed while this process started"):
        restart.fit()
    assert (run / "metrics.jsonl").read_text() == log
    RunLock(run).release()  # and the refused trainer let the lock go


def test_a_resume_whose_checkpoint_another_process_wrote_after_it_was_read_is_refused(tmp_path, monkeypatch):
    """A resume reads the checkpoint before the lock (a distilled run's names its teacher): here another process
    trains epoch 3 in between, so the epoch-2 state read is stale and would train epoch 3 again over it."""
    run = tmp_path / "run"
    assert main(["train", *TINY, "schedule.name=none", "--out", str(run)]) == 0
    late = Trainer(load_config(run / "config.yaml", ["train.epochs=4"]), run, resume=True)
    build = trainer.build_training

    def build_while_another_trains(*args, **kwargs):
        monkeypatch.setattr(trainer, "build_training", build)  # the other process builds as usual
        setup = build(*args, **kwargs)
        assert main(["train", "--out", str(run), "--resume", "train.epochs=3"]) == 0
        return setup

    monkeypatch.setattr(trainer, "build_training", build_while_another_trains)
    with pytest.raises(ConfigError, match=f"^{run} changed while this process started"):
        late.fit()
    assert [r["epoch"] for r in RunDir(run).metrics.read()] == [1, 2, 3]
    RunLock(run).release()  # and the refused trainer let the lock go


class _Killed(Exception):
    pass


def _killed(*args, **kwargs):
    raise _Killed  # as if killed while writing the first checkpoint


@pytest.mark.parametrize("made_again", [False, True])
def test_a_folder_removed_while_training_is_not_written_into(tmp_path, made_again):
    """Removed after epoch 1 (and made again by another run): epoch 2 used to write into the new folder (its
    atomic writes make missing folders), mixing the runs; the first run now stops and leaves the folder alone."""
    run, other = tmp_path / "run", []

    def replace_folder(trainer, record):
        if record["epoch"] == 1:
            shutil.rmtree(run)
            if made_again:
                run.mkdir()
                (run / "notes.txt").write_text("another run's")
                other.append(RunLock(run))

    trainer = Trainer(load_config(None, TINY), run, callbacks=(replace_folder,))
    with pytest.raises(ConfigError, match=f"^{run} was removed or replaced while this run trained"):
        trainer.fit()
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, "notes.txt"] if made_again else not run.exists()
    for lock in other:
        lock.release()
