"""One trainer per run folder: a second one, while the first trains, is refused in one line and writes nothing."""

import pytest

from deepspike.cli import main
from deepspike.core.errors import ConfigError
from deepspike.training.run_lock import RunLock
from deepspike.training.runs import LOCK_NAME, RunDir
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
