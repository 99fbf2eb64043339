"""CLI: commands run; bad input gives one line on stderr, exit status 2, and nothing written."""

import json
import os
import re
import subprocess
import sys

import pytest

from deepspike.cli import main
from deepspike.commands import datasets

FAST = [
    "model.name=mlp",
    "model.args.hidden=[16]",
    "method.timesteps=2",
    "train.epochs=1",
    "train.progress=false",
]


def test_models_and_methods_list(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "lenet" in out and "187,500" in out  # LeNet's parameter count (see test_models_spec)
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "stbp:" in out and "ann:" in out and "timesteps = 8" in out
    neurons = "lif | plif | psn | masked_psn | sliding_psn | synaptic | alif"
    assert f"    neuron = 'lif'  ({neurons})\n" in out  # the valid values of a fixed set
    assert "triangular" in out.split("surrogate = 'rectangular'", 1)[1].splitlines()[0]


def test_models_table_columns_line_up_for_long_names(capsys):
    """Names longer than 18 characters (wu2019_middle_events, 20) once pushed their row one or more columns right."""
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(len(line.split()[0]) > 18 for line in lines[1:])  # the case the test is about is present
    ends = {re.match(r"(\S+)( +)(\S+)( +)(\S+)( +)(\S+)", line).end(7) for line in lines}
    starts = {re.match(r"(\S+) +", line).end() for line in lines}
    assert len(ends) == 1 and len(starts) == 1, (ends, starts)


def test_train_then_eval(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main(["train", *FAST, "--out", str(out_dir)]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(out_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == summary["test_accuracy"]


def test_train_from_yaml_file(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: {name: ann}\nmodel: {name: mlp, args: {hidden: [8]}}\ntrain: {epochs: 1}\n")
    assert main(["train", str(recipe), "train.progress=false", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["method"] == "ann"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "model.name=vgg99"], "unknown model 'vgg99'; valid:"),
        (["train", "data.name=imagenet21k"], "unknown dataset 'imagenet21k'; valid:"),
        (["train", "train.epochs=-1"], "bad value -1 for train.epochs"),
        (["train", "train.lr=0.1"], "unknown key train.lr"),
        (["train", "missing.yaml"], "config file not found: missing.yaml"),
        (["eval", "no/such/run"], "is not a run directory"),
        (["eval", ""], "the run folder's path is empty"),  # was ". is not a run directory", or ran the current folder
        (["compare", "runs/a", ""], "the run folder's path is empty"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, args, message):
    out_dir = tmp_path / "out"
    argv = args + (["--out", str(out_dir)] if args[0] == "train" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out_dir.exists()  # nothing was written


def test_console_entry_point_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "deepspike", "train", "model.name=nope", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("deepspike: error: unknown model 'nope'")
    assert "Traceback" not in proc.stderr


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    """Kill a real training process after its first checkpoint, resume it, compare with a run never killed.

    The kill lands anywhere after epoch 1's checkpoint (mid-epoch, or while a later checkpoint is being
    written): atomic writes leave a valid checkpoint either way, and the resumed run must end identically.
    """
    import signal
    import time

    import torch

    from deepspike.training.runs import load_checkpoint

    recipe = [
        "method.name=stbp",
        "method.timesteps=4",
        "method.encoder=poisson",
        "model.name=mlp",
        "model.args.hidden=[64]",
        "model.args.dropout=0.1",
        "train.epochs=4",
        "train.batch_size=32",
        "train.progress=false",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "deepspike", "train", *recipe]
    subprocess.run([*base, "--out", str(tmp_path / "full")], env=env, check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*base, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(killed / "checkpoint.pt")["epoch"] >= 1
    resumed = subprocess.run(
        [sys.executable, "-m", "deepspike", "train", "--out", str(killed), "--resume", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    again = load_checkpoint(killed / "checkpoint.pt")["model"]
    assert all(torch.equal(full[k], again[k]) for k in full)
    epochs = [json.loads(line)["epoch"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]  # no epoch logged twice, none missing


def _deepspike(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "deepspike", *args], stderr=subprocess.PIPE, env=env, **kw)


def test_listing_into_a_closed_pipe_ends_quietly_with_status_141():
    """A reader that is gone before the first line (the end state of ``deepspike models | head -2``): no
    BrokenPipeError traceback, nothing on stderr, status 128 + SIGPIPE."""
    procs = {}
    for command in ("models", "datasets", "methods"):
        procs[command] = _deepspike(command, stdout=subprocess.PIPE)
        procs[command].stdout.close()  # the reader goes away before anything is written
    for command, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert (command, err.decode()) == (command, "")
        assert proc.returncode == 141, command


def test_listing_piped_into_head_prints_no_traceback(tmp_path):
    """The real pipeline ``deepspike models | head -1``: the first line arrives, stderr stays empty."""
    err_file = tmp_path / "stderr.txt"
    shell = (f"set -o pipefail; '{sys.executable}' -m deepspike models 2>'{err_file}' | head -1; "
             "echo status=$?")
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["model", "input"]
    assert lines[1] in ("status=0", "status=141")  # 0 when the listing fit the pipe before head exited
    assert err_file.read_text() == ""


def test_a_broken_pipe_that_is_not_stdout_is_an_error(monkeypatch, capsys):
    """Only a closed stdout ends quietly; a BrokenPipeError from anything else (a worker's pipe) propagates."""
    def broken(args):
        raise BrokenPipeError("worker pipe")

    monkeypatch.setattr(datasets, "run", broken)
    with pytest.raises(BrokenPipeError, match="worker pipe"):
        main(["datasets"])


DEMO_QUICK = ["train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false"]


def test_demo_replaces_only_an_earlier_demo(tmp_path, capsys):
    """The demo starts fresh over an earlier demo run (its .demo marker) and writes into no other folder."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *DEMO_QUICK]) == 0
    (out / "left over").write_text("from the earlier demo")
    assert main(["demo", "--out", str(out), *DEMO_QUICK]) == 0
    assert not (out / "left over").exists() and (out / "summary.json").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    capsys.readouterr()
    assert main(["demo", "--out", str(mine), *DEMO_QUICK]) == 2
    err = capsys.readouterr().err
    assert err == f"deepspike: error: {mine} is not empty and holds no earlier demo; pick another --out\n"
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_timesteps_refuses_a_t_that_cannot_fit_in_memory(tmp_path, capsys):
    """issue 19, item 12: --eval-T 100000000 tried to allocate ~100 TB; refused before allocating or writing."""
    run, out = tmp_path / "run", tmp_path / "sweep"
    assert main(["train", *FAST, "method.name=stbp", "train.max_steps_per_epoch=1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["timesteps", str(run), "--eval-T", "4,100000000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: inference T=100000000 needs at least ") and err.count("\n") == 1
    assert not out.exists()


def test_eval_and_train_print_strict_json(tmp_path, capsys, monkeypatch):
    """Everything we print as JSON is strict: a NaN score is printed as null."""
    from deepspike import api

    monkeypatch.setattr(api, "evaluate", lambda run_dir, split, **options: {"test_accuracy": float("nan")})
    assert main(["eval", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out, parse_constant=pytest.fail) == {"test_accuracy": None}


@pytest.mark.parametrize("seed", [str(2**64), "-1"])
def test_convert_refuses_a_seed_that_train_seed_would_refuse(tmp_path, capsys, seed):
    """Checked before the run is read: the run folder need not exist for the refusal."""
    assert main(["convert", str(tmp_path / "no_run"), "--seed", seed, "--out", str(tmp_path / "c")]) == 2
    expected = f"deepspike: error: --seed must be in [0, 2**63 - 1] (as train.seed), got {seed}\n"
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "c").exists()


def test_convert_refuses_more_threads_than_the_machine_has(tmp_path, capsys):
    """--threads 100000 ended in a segmentation fault (exit 139) as the threads' stacks ran out; now one line."""
    cpus = os.cpu_count() or 1
    assert main(["convert", str(tmp_path / "no_run"), "--threads", str(cpus + 1), "--out", str(tmp_path / "c")]) == 2
    expected = f"deepspike: error: --threads must be in 1 .. {cpus} (this machine's CPUs), got {cpus + 1}\n"
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "c").exists()


def test_models_with_a_bad_class_count_prints_only_the_error(capsys):
    assert main(["models", "--classes", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "deepspike: error: num_classes must be >= 2, got 0\n"


def test_convert_refuses_more_time_steps_than_its_cap(tmp_path, capsys):
    """--timesteps 100000000000 was accepted and simulated on without end; now refused before the run is read."""
    assert main(["convert", str(tmp_path / "no_run"), "--timesteps", str(10**11), "--out", str(tmp_path / "c")]) == 2
    expected = "deepspike: error: timesteps (--timesteps) must be at most 100,000 steps, got 100000000000\n"
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("classes", [str(10**11), "65537"])
def test_models_refuses_a_class_count_beyond_the_largest_model_argument(capsys, classes):
    """--classes 100000000000 once listed nets of 4 * 10**13 weights; the most is models.registry.MAX_SIZE_ARG."""
    assert main(["models", "--classes", classes]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"deepspike: error: num_classes must be at most 65536, got {classes}\n"


@pytest.mark.parametrize("command", [["analyze"], ["convert"], ["convert", "--to", "ttfs"]])
def test_a_file_given_as_the_run_is_named_not_a_run_without_an_out_given(tmp_path, capsys, command):
    # before: "--out model.nir/analysis: model.nir is a file, not a folder", an option the user never gave
    model = tmp_path / "model.nir"
    model.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert main([command[0], str(model), *command[1:]]) == 2
    assert capsys.readouterr().err == f"deepspike: error: {model} is not a run directory (no config.yaml)\n"
    assert sorted(tmp_path.iterdir()) == [model]
