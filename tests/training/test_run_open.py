"""Which folders a run may be trained into, and which config changes a resume accepts (``training.run_open``).

Nothing a user wrote is overwritten: ``--out`` holding any run file is refused without ``--resume``; a resume
refuses every override it would not apply; ``--out`` that cannot be a folder is one line; a run killed before
its first checkpoint starts again on ``--resume``.
"""

import errno
import json
import os
import tempfile

import pytest

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.core.errors import ConfigError, WriteError
from deepspike.training.run_open import RESUMABLE_KEYS, changed_keys, config_digest
from deepspike.training.runs import RUN_FILES, RunDir, load_checkpoint
from deepspike.training.trainer import Trainer

QUICK = ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "train.epochs=1", "train.batch_size=64",
         "train.max_steps_per_epoch=2", "train.progress=false"]


def _one_line_error(capsys, argv) -> str:
    """Run the CLI; it must exit 2 with one error line on stderr (after any epoch lines), no traceback.
    Returns that line."""
    assert main(argv) == 2
    *before, last = capsys.readouterr().err.splitlines()
    assert last.startswith("deepspike: error: ") and all(line.startswith("epoch ") for line in before), before
    return last


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_out_with_the_users_own_files_is_not_overwritten(tmp_path, capsys):
    """issue 19, item 5: a folder with the user's commented config.yaml and a metrics.jsonl, no checkpoint."""
    (tmp_path / "config.yaml").write_text("# my notes\nmethod: {name: ann}\n")
    (tmp_path / "metrics.jsonl").write_text('{"mine": 1}\n')
    before = _snapshot(tmp_path)
    err = _one_line_error(capsys, ["train", *QUICK, "--out", str(tmp_path)])
    assert "holds config.yaml, metrics.jsonl, which a run would overwrite" in err
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("name", RUN_FILES)
def test_any_run_file_in_out_is_refused(tmp_path, capsys, name):
    (tmp_path / name).write_bytes(b"the user's")
    _one_line_error(capsys, ["train", *QUICK, "--out", str(tmp_path)])
    assert _snapshot(tmp_path) == {name: b"the user's"}


@pytest.mark.parametrize("name", ["metrics.csv", "reproduce.json"])
def test_a_users_file_of_a_name_a_run_writes_or_removes_is_refused_and_kept(tmp_path, capsys, name):
    """A new run overwrote the user's metrics.csv (train.log=[csv]) and deleted the user's reproduce.json (a run that
    trains removes the report of a finished one) in an --out that held neither a run file nor a started run."""
    (tmp_path / name).write_bytes(b"the user's")
    err = _one_line_error(capsys, ["train", *QUICK, "train.log=[csv]", "--out", str(tmp_path)])
    assert f"holds {name}, which a run would overwrite" in err
    assert _snapshot(tmp_path) == {name: b"the user's"}


def test_a_users_tensorboard_folder_is_not_written_into(tmp_path, capsys):
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "tensorboard" / "events.mine").write_bytes(b"the user's")
    err = _one_line_error(capsys, ["train", *QUICK, "--out", str(tmp_path)])
    assert "holds tensorboard, which a run would overwrite" in err
    assert [p.name for p in tmp_path.iterdir()] == ["tensorboard"]
    assert _snapshot(tmp_path / "tensorboard") == {"events.mine": b"the user's"}


def test_a_new_run_refused_in_its_first_epoch_takes_back_its_csv_and_tensorboard_events(tmp_path, capsys,
                                                                                         monkeypatch):
    """The first checkpoint cannot be written (a full disk) after the epoch's CSV row and TensorBoard events were:
    the new run takes back all it wrote in a folder that was there (its metrics.csv and tensorboard/ stayed)."""
    pytest.importorskip("tensorboard")
    (tmp_path / "mine.txt").write_text("the user's")

    def full_disk(self, payload):
        raise WriteError(f"cannot write {self.checkpoint_path}: No space left on device")

    monkeypatch.setattr(RunDir, "write_checkpoint", full_disk)
    err = _one_line_error(capsys, ["train", *QUICK, "train.log=[csv,tensorboard]", "--out", str(tmp_path)])
    assert "No space left on device" in err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    monkeypatch.undo()
    assert main(["train", *QUICK, "train.log=[csv]", "--out", str(tmp_path)]) == 0


def test_an_empty_or_unrelated_folder_is_fine(tmp_path):
    (tmp_path / "notes.txt").write_text("kept")
    assert main(["train", *QUICK, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "notes.txt").read_text() == "kept" and RunDir(tmp_path).has_checkpoint()


@pytest.mark.parametrize("kind", ["file", "under a file", "/dev/null"])
def test_out_that_cannot_be_a_folder_is_one_line(tmp_path, capsys, kind):
    """issue 19, item 12: an existing file, a path under a file, /dev/null."""
    (tmp_path / "f").write_text("data")
    out = {"file": tmp_path / "f", "under a file": tmp_path / "f" / "run", "/dev/null": "/dev/null"}[kind]
    err = _one_line_error(capsys, ["train", *QUICK, "--out", str(out)])
    assert "not a folder" in err or "is a file, not a folder" in err
    assert _snapshot(tmp_path) == {"f": b"data"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder_is_one_line(tmp_path, capsys):
    tmp_path.chmod(0o500)
    try:
        err = _one_line_error(capsys, ["train", *QUICK, "--out", str(tmp_path / "run")])
    finally:
        tmp_path.chmod(0o700)
    assert "cannot write into" in err and not (tmp_path / "run").exists()


def test_resume_refuses_overrides_it_would_not_apply(tmp_path, capsys):
    """issue 19, item 7: ``--resume optim.lr=100 schedule.name=none`` and a changed T mid-run."""
    run = tmp_path / "run"
    assert main(["train", *QUICK, "method.name=stbp", "method.timesteps=2", "--out", str(run)]) == 0
    before = _snapshot(run)
    err = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "optim.lr=100", "schedule.name=cosine",
                                   "method.timesteps=5"])
    assert "--resume cannot change method.timesteps, optim.lr, schedule.name" in err
    assert "train.epochs" in err  # says what may change
    assert _snapshot(run) == before  # config.yaml records nothing that was not applied


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_resume_keeps_the_epochs_a_schedule_is_spread_over(tmp_path, capsys, schedule):
    """A cosine run of 1 epoch resumed to 3 ran epoch 1 down to lr 0, then went back up (the schedule rebuilt
    over 3 epochs), while config.yaml claimed one 3-epoch cosine."""
    run = tmp_path / "run"
    assert main(["train", *QUICK, f"schedule.name={schedule}", "--out", str(run)]) == 0
    before = _snapshot(run)
    err = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=3"])
    assert err == (f"deepspike: error: --resume cannot change train.epochs (1 -> 3) of a run with schedule.name="
                   f"{schedule}: its learning rate is spread over train.epochs, so the epochs already trained "
                   "followed another schedule; train a new run")
    assert _snapshot(run) == before


def test_resume_applies_the_keys_meant_to_change(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    assert main(["train", "--out", str(run), "--resume", "train.epochs=2", "data.num_workers=0", "--no-progress"]) == 0
    assert load_config(run / "config.yaml").train.epochs == 2
    assert [r["epoch"] for r in RunDir(run).metrics.read()] == [1, 2]
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 2


def test_changed_keys_names_nested_keys_and_a_saved_config_has_none():
    a = load_config(None, QUICK)
    b = load_config(None, QUICK + ["model.args.hidden=[9]", "optim.betas=[0.8,0.9]", "train.epochs=4"])
    assert changed_keys(a, b) == ["model.args.hidden", "optim.betas", "train.epochs"]
    assert "train.epochs" in RESUMABLE_KEYS and "optim.lr" not in RESUMABLE_KEYS


def test_saved_config_round_trips_without_changes(tmp_path):
    cfg = load_config(None, QUICK + ["method.name=stbp", "optim.lr=3e-3", "model.width=0.5"])
    RunDir(tmp_path).write_config(cfg)
    assert changed_keys(load_config(tmp_path / "config.yaml"), cfg) == []


def test_a_run_killed_before_its_first_checkpoint_starts_again_on_resume(tmp_path, capsys):
    """A run that finished no epoch is still a run: refused without --resume, restarted with it."""

    class Killed(Exception):
        pass

    def die(*args, **kwargs):
        raise Killed

    cfg = load_config(None, QUICK)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.run.write_checkpoint = die  # as if killed while writing the first checkpoint
    with pytest.raises(Killed):
        trainer.fit()
    assert not RunDir(tmp_path / "run").has_checkpoint()
    err = _one_line_error(capsys, ["train", *QUICK, "--out", str(tmp_path / "run")])
    assert "finished no epoch; use --resume" in err
    assert main(["train", "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert [r["epoch"] for r in RunDir(tmp_path / "run").metrics.read()] == [1]


def test_full_disk_at_checkpoint_time_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    """issue 19, item 12: ENOSPC inside the atomic write of epoch 2's checkpoint."""
    run = tmp_path / "run"
    writes = []
    real_fsync = os.fsync

    def fsync(fd):
        if ".checkpoint.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            writes.append(RunDir(run).checkpoint_path.read_bytes() if writes else None)
            if len(writes) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    err = _one_line_error(capsys, ["train", *QUICK, "train.epochs=2", "--out", str(run)])
    assert f"cannot write {run / 'checkpoint.pt'}: No space left on device" in err
    assert RunDir(run).checkpoint_path.read_bytes() == writes[1]  # epoch 1's, untouched
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert not (run / "summary.json").exists()
    assert sorted(p.name for p in run.iterdir()) == [".deepspike-lock", ".deepspike-run", "checkpoint.pt",
                                                     "config.yaml", "metrics.jsonl"]  # no temporary file left
    monkeypatch.undo()
    assert main(["train", "--out", str(run), "--resume"]) == 0  # the run goes on once there is space
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2


def test_read_only_file_system_at_checkpoint_time_is_one_line(tmp_path, capsys, monkeypatch):
    """A read-only folder as root sees it: creating the temporary file fails (simulated: EROFS)."""
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    before = _snapshot(run)

    def mkstemp(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    err = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=2"])
    assert "cannot write" in err and "Read-only file system" in err
    assert _snapshot(run) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_run_folder_at_checkpoint_time_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    before = _snapshot(run)
    run.chmod(0o500)
    try:
        err = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=2"])
    finally:
        run.chmod(0o700)
    assert "cannot write" in err and _snapshot(run) == before


def test_resume_without_a_recipe_continues_with_the_runs_config(tmp_path, capsys):
    run = tmp_path / "run"
    (run).mkdir()
    (run / ".deepspike-run").write_text("")  # killed while writing config.yaml: nothing tells its recipe
    err = _one_line_error(capsys, ["train", "--out", str(run), "--resume"])
    assert "holds a run killed before it wrote config.yaml: train it again without --resume" in err
    recipe = tmp_path / "r.yaml"
    RunDir(tmp_path).write_config(load_config(None, QUICK))
    recipe.write_bytes((tmp_path / "config.yaml").read_bytes())
    assert main(["train", str(recipe), "--out", str(run), "--resume"]) == 0  # with its recipe it starts again
    assert load_config(run / "config.yaml") == load_config(None, QUICK)
    assert main(["train", *QUICK, "train.epochs=2", "--out", str(run), "--resume"]) == 0  # overrides only: fine too
    assert [r["epoch"] for r in RunDir(run).metrics.read()] == [1, 2]
    err = _one_line_error(capsys, ["train", "--out", str(tmp_path / "none"), "--resume"])
    assert "--resume given but" in err and "does not exist" in err and not (tmp_path / "none").exists()


@pytest.mark.parametrize("folder_was_there", [False, True])
def test_input_refused_in_the_first_epoch_leaves_nothing_behind(tmp_path, capsys, folder_was_there):
    """Event frames asked of a data set of images: refused by the first batch, after the run's files were written;
    they are taken back, so the same --out takes the corrected recipe without --resume."""
    run = tmp_path / "R"
    if folder_was_there:
        run.mkdir()
        (run / "mine.txt").write_text("the user's")
    bad = ["train", *QUICK, "method.name=stbp", "method.encoder=frames", "--out", str(run)]
    assert "encoder 'frames' needs event frames" in _one_line_error(capsys, bad)
    assert (sorted(p.name for p in run.iterdir()) == ["mine.txt"]) if folder_was_there else not run.exists()
    assert main(["train", *QUICK, "method.name=stbp", "--out", str(run)]) == 0


def test_resume_to_fewer_epochs_than_trained_is_refused_and_changes_nothing(tmp_path, capsys):
    run = tmp_path / "R"
    assert main(["train", *QUICK, "train.epochs=2", "--out", str(run)]) == 0
    before = _snapshot(run)
    line = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=1"])
    assert line.endswith(f"--resume with train.epochs=1: {run} has trained 2 epochs already; give train.epochs >= 2, "
                         "or train a new run")
    assert _snapshot(run) == before


def test_a_checkpoint_past_its_metrics_log_is_refused(tmp_path, capsys):
    run = tmp_path / "R"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    (run / "metrics.jsonl").write_text("")
    line = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=2"])
    assert line.endswith("checkpoint.pt is at epoch 1 but " + str(run / "metrics.jsonl") + " logs 0 epochs: the run's "
                         "files do not belong together")


@pytest.mark.parametrize("epochs", [[1, 1], [2, 1], [1, 1, 2]])
def test_a_metrics_log_repeating_or_reordering_epochs_is_refused_on_resume(tmp_path, capsys, epochs):
    """A log [1, 1] under a checkpoint at epoch 2 passed (two lines for two epochs, counted, not told apart) and the
    resumed run logged [1, 1, 3]; nothing is written now."""
    run = tmp_path / "R"
    assert main(["train", *QUICK, "train.epochs=2", "--out", str(run)]) == 0
    line = (run / "metrics.jsonl").read_text().splitlines()[0]
    (run / "metrics.jsonl").write_text("".join(line.replace('"epoch": 1', f'"epoch": {e}') + "\n" for e in epochs))
    assert [r["epoch"] for r in RunDir(run).metrics.read()] == epochs
    before = _snapshot(run)
    line = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=3"])
    assert line.endswith(f"{run / 'metrics.jsonl'} logs epochs {epochs} up to the checkpoint's epoch 2, not each of "
                         "1 to 2 once in order: the log is damaged")
    assert _snapshot(run) == before


def test_an_emptied_run_config_is_refused_by_eval_and_resume(tmp_path, capsys):
    run = tmp_path / "R"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    (run / "config.yaml").write_text("")
    for argv in (["eval", str(run)], ["train", "--out", str(run), "--resume", "train.epochs=2"]):
        assert "is not a whole run config (missing method, model" in _one_line_error(capsys, argv)
    assert (run / "config.yaml").read_text() == ""


def test_a_method_made_by_conversion_is_not_trained(tmp_path, capsys):
    run = tmp_path / "R"
    line = _one_line_error(capsys, ["train", *QUICK, "method.name=converted", "--out", str(run)])
    assert line == ("deepspike: error: method 'converted' is not trained: its nets are made by `deepspike convert "
                    "ANN_RUN` (train an ann run and convert it)")
    assert not run.exists()


def test_an_empty_out_is_refused_and_nothing_lands_in_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _one_line_error(capsys, ["train", *QUICK, "--out", ""]) == ("deepspike: error: --out is empty; give the "
                                                                     "name of a folder")
    assert list(tmp_path.iterdir()) == []


def test_resume_cannot_change_the_epochs_a_delay_schedule_is_spread_over(tmp_path):
    rows = ["method.name=stbp", "method.encoder=frames", "method.timesteps=8", "model.name=dsnn",
            "model.args.hidden=[8]", "model.args.delays=3", "data.name=digits_rows", "train.progress=false",
            "train.max_steps_per_epoch=1", "schedule.name=none"]
    Trainer(load_config(None, [*rows, "train.epochs=1"]), tmp_path / "run").fit()
    with pytest.raises(ConfigError, match=r"^--resume cannot change train.epochs \(1 -> 2\) of a net with "
                                          r"DelayedLinear layers: their schedule is spread over train.epochs"):
        Trainer(load_config(None, [*rows, "train.epochs=2"]), tmp_path / "run", resume=True).fit()
    plain = [r.replace("model.name=dsnn", "model.name=rsnn") for r in rows if "delays" not in r]
    Trainer(load_config(None, [*plain, "train.epochs=1"]), tmp_path / "plain").fit()
    Trainer(load_config(None, [*plain, "train.epochs=2"]), tmp_path / "plain", resume=True).fit()  # no schedule


def test_resume_refuses_a_config_yaml_edited_since_the_checkpoint(tmp_path, capsys):
    """The checkpoint records its config (config_sha256): an edited config.yaml, or a checkpoint copied in from a run
    of another config, was resumed without a word (found by a sweep of the commands)."""
    run, other = tmp_path / "run", tmp_path / "other"
    assert main(["train", *QUICK, "--out", str(run)]) == 0
    assert main(["train", *QUICK, "optim.lr=0.005", "--out", str(other)]) == 0  # the same shapes, another lr
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("lr: 0.001", "lr: 0.002"))
    assert "lr: 0.002" in (run / "config.yaml").read_text()
    line = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=2"])
    assert "was trained with another config than" in line
    (run / "config.yaml").write_text(text)
    (run / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    line = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=2"])
    assert "was trained with another config than" in line
    checkpoint = load_checkpoint(other / "checkpoint.pt")
    assert len(checkpoint["config_sha256"]) == 64
    assert main(["train", "--out", str(other), "--resume", "train.epochs=2", "train.progress=false"]) == 0


@pytest.mark.parametrize("saved, given", [
    ("optim.weight_decay=-0.0", "optim.weight_decay=0.0"),
    ("data.args.size=1", "data.args.size=1.0"),
    ("data.args.size=1", "data.args.size=true"),
    ("optim.weight_decay=0.0", "optim.weight_decay=0"),
])
def test_changed_keys_tells_values_apart_as_the_checkpoints_config_digest_does(saved, given):
    """changed_keys compared with ==, the digest hashed JSON: -0.0 and 0.0 (1 and 1.0, 1 and true) passed the first
    and failed the second, so the resume was refused as 'edited since, or the checkpoint copied from another run'."""
    a, b = load_config(None, [*QUICK, saved]), load_config(None, [*QUICK, given])
    assert (changed_keys(a, b) == []) == (config_digest(a) == config_digest(b))


def test_a_resume_changing_zeros_sign_names_the_key(tmp_path, capsys):
    """Measured: a run trained with optim.weight_decay=-0.0, resumed with 0.0, was refused as a checkpoint 'trained
    with another config than config.yaml (edited since, or ... copied from another run)'."""
    run = tmp_path / "run"
    assert main(["train", *QUICK, "optim.weight_decay=-0.0", "--out", str(run)]) == 0
    before = _snapshot(run)
    line = _one_line_error(capsys, ["train", *QUICK, "optim.weight_decay=0.0", "train.epochs=2", "--out", str(run),
                                    "--resume"])
    assert line.startswith("deepspike: error: --resume cannot change optim.weight_decay (the run was trained with")
    assert _snapshot(run) == before
    assert main(["train", *QUICK, "optim.weight_decay=-0.0", "train.epochs=2", "--out", str(run), "--resume"]) == 0


def test_an_stdp_run_may_train_on_for_more_epochs(tmp_path):
    """STDP's epoch schedule depends on the epoch alone (its first N epochs), not on train.epochs."""
    stdp = ["method.name=stbp", "model.name=mlp", "model.args.hidden=[8]", "data.name=digits", "train.progress=false",
            "train.max_steps_per_epoch=2", "schedule.name=none", "method.stdp_layers=[0]", "method.stdp_epochs=1"]
    Trainer(load_config(None, [*stdp, "train.epochs=1"]), tmp_path / "run").fit()
    Trainer(load_config(None, [*stdp, "train.epochs=2"]), tmp_path / "run", resume=True).fit()
    assert [r["epoch"] for r in RunDir(tmp_path / "run").metrics.read()] == [1, 2]


@pytest.mark.parametrize("kind", ["dangling link", "folder"])
def test_a_checkpoint_that_cannot_be_read_is_refused_not_trained_again_from_epoch_0(tmp_path, capsys, kind):
    """checkpoint.pt a link to storage not mounted (or a folder): the resume took the run for one killed before its
    first checkpoint, dropped the 2 logged epochs and trained from epoch 0 (over the link; at a folder it failed to
    write after the log had lost them)."""
    run = tmp_path / "R"
    assert main(["train", *QUICK, "train.epochs=2", "--out", str(run)]) == 0
    checkpoint = run / "checkpoint.pt"
    checkpoint.unlink()
    if kind == "folder":
        checkpoint.mkdir()
    else:
        checkpoint.symlink_to(tmp_path / "unmounted" / "checkpoint.pt")
    before = (run / "metrics.jsonl").read_text()
    line = _one_line_error(capsys, ["train", "--out", str(run), "--resume", "train.epochs=3"])
    assert line == f"deepspike: error: {checkpoint} is not a readable file (a folder, or a link to nothing?)"
    assert (run / "metrics.jsonl").read_text() == before and len(before.splitlines()) == 2
    assert os.path.lexists(checkpoint) and not checkpoint.is_file()
    assert _one_line_error(capsys, ["eval", str(run)]) == line
    assert "already holds a run" in _one_line_error(capsys, ["train", *QUICK, "--out", str(run)])
