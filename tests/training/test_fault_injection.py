"""Fault injection: a tiny training run killed with SIGKILL at points chosen by a seed, then resumed, ends
exactly as a run that was never killed (every weight and optimizer tensor, the metrics log, the summary).

The kill points are events of the uninterrupted run, recorded once: each optimizer step, and for each atomic
write of a run file three points: ``torn`` (inside the write: the temporary file is cut to half its bytes),
``written`` (complete but not yet renamed) and ``replaced`` (just after the rename). The killed run is a
forked child that SIGKILLs itself at its chosen event; the resume runs here. ``DEEPSPIKE_FAULT_SEED`` picks
other points (the default seed keeps the test reproducible).
"""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from deepspike.config import load_config
from deepspike.training.runs import RunDir, load_checkpoint
from deepspike.training.trainer import Trainer
from tiny_run import TINY

RECIPE = TINY + ["train.epochs=3", "train.batch_size=32", "train.max_steps_per_epoch=4"]
WATCHED = ("config.yaml", "metrics.jsonl", "checkpoint.pt", "summary.json")
TIMING = ("epoch_seconds", "train_seconds")
SEED = int(os.environ.get("DEEPSPIKE_FAULT_SEED", "0"))
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses os.fork and /proc/self/fd")


class Events:
    """Numbers the run's events; kills this process (SIGKILL) at event ``kill_at``."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.names: list[str] = []
        self.kill_at = kill_at

    def hit(self, name: str, fd: int | None = None) -> None:
        self.names.append(name)
        if len(self.names) - 1 == self.kill_at:
            if fd is not None:  # a torn write: half of the bytes reached the temporary file
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
            os.kill(os.getpid(), signal.SIGKILL)


def _watched_temp(fd: int) -> str | None:
    """The run file whose temporary file ``fd`` is (``.NAME.XXXX.tmp``), else None."""
    name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
    return next((w for w in WATCHED if name.startswith(f".{w}.") and name.endswith(".tmp")), None)


def hook_events(setattr_, events: Events):
    """Route os.fsync/os.replace (used by the atomic writes) and every optimizer step through ``events``;
    ``setattr_``: monkeypatch.setattr, or plain setattr in a child. Returns the step hook's handle."""
    fsync, replace = os.fsync, os.replace

    def hooked_fsync(fd):
        name = _watched_temp(fd)
        if name:
            events.hit(f"{name} torn", fd)
        fsync(fd)
        if name:
            events.hit(f"{name} written")

    def hooked_replace(src, dst):
        replace(src, dst)
        if Path(dst).name in WATCHED:
            events.hit(f"{Path(dst).name} replaced")

    setattr_(os, "fsync", hooked_fsync)
    setattr_(os, "replace", hooked_replace)
    return register_optimizer_step_post_hook(lambda optimizer, args, kwargs: events.hit("step"))


def kill_points(names: list[str], seed: int) -> dict[str, int]:
    """One event index per kind of kill point, chosen by ``seed``."""
    rng = random.Random(seed)
    first_checkpoint = names.index("checkpoint.pt replaced")

    def pick(ok):
        return rng.choice([i for i, name in enumerate(names) if ok(i, name)])

    return {
        "before the first checkpoint": pick(lambda i, n: n == "step" and i < first_checkpoint),
        "mid-epoch after a checkpoint": pick(lambda i, n: n == "step" and i > first_checkpoint),
        "inside a checkpoint write": pick(lambda i, n: n in ("checkpoint.pt torn", "checkpoint.pt written")),
        "inside a metrics write": pick(lambda i, n: n in ("metrics.jsonl torn", "metrics.jsonl written")),
        "between an epoch's metrics and its checkpoint": pick(lambda i, n: n == "metrics.jsonl replaced"),
        "right after a checkpoint": pick(lambda i, n: n == "checkpoint.pt replaced"),
        "inside the config or summary write": pick(lambda i, n: n.split()[0] in ("config.yaml", "summary.json")
                                                   and not n.endswith("replaced")),
    }


def run_killed(recipe: list[str], outs_and_kills: list[tuple[Path, int]]) -> list[int]:
    """Train ``recipe`` into each ``out`` in a forked child that kills itself at event ``kill_at``; returns
    the children's wait statuses. The children fork from a fresh process that has run no torch computation
    (fork after OpenMP was used is unsafe, and a fresh interpreter per kill would be slow)."""
    tests = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([os.environ.get("PYTHONPATH", ""), str(tests.parent / "src"), str(tests)])}
    jobs = json.dumps({"recipe": recipe, "kills": [[str(out), kill_at] for out, kill_at in outs_and_kills]})
    proc = subprocess.run([sys.executable, __file__, jobs], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _fork_killed_runs(jobs: dict) -> list[int]:
    """The parent side of ``run_killed`` (runs as ``python THIS_FILE JOBS``). Imports what every child
    would import (scikit-learn, torch's compiler stack, which ``use_deterministic_algorithms`` loads) but
    computes nothing."""
    import sklearn.datasets  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    torch.use_deterministic_algorithms(True, warn_only=True)
    cfg = load_config(None, jobs["recipe"])
    statuses = []
    for out, kill_at in jobs["kills"]:
        pid = os.fork()
        if pid == 0:  # the child never returns
            try:
                hook_events(setattr, Events(kill_at))
                Trainer(cfg, out).fit()
            finally:
                os._exit(0)
        statuses.append(os.waitpid(pid, 0)[1])
    return statuses


def outcome(out: Path) -> tuple[dict, list[dict], dict]:
    """The final checkpoint, the metrics log and the summary, without the timing keys."""
    run = RunDir(out)
    log = [{k: v for k, v in r.items() if k not in TIMING} for r in run.metrics.read()]
    summary = {k: v for k, v in run.read_summary().items() if k not in TIMING}
    return load_checkpoint(run.checkpoint_path), log, summary


def assert_same_tensors(a, b, where: str) -> None:
    """Every tensor in nested dicts/lists ``a`` equals the one at the same place in ``b`` (torch.equal)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")


def check_kills(tmp_path, monkeypatch, choose) -> None:
    """Record the uninterrupted run's events, kill a run at each of ``choose(events)`` (where -> event index),
    resume each, and compare with the uninterrupted run. Every run uses one torch thread like the killed
    children (OMP_NUM_THREADS=1): bit-equal results need the same reductions, and the thread count changes them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_kills(tmp_path, monkeypatch, choose)
    finally:
        torch.set_num_threads(threads)


def _check_kills(tmp_path, monkeypatch, choose) -> None:
    cfg = load_config(None, RECIPE)
    events = Events()
    with monkeypatch.context() as m:
        handle = hook_events(m.setattr, events)
        try:
            Trainer(cfg, tmp_path / "full").fit()
        finally:
            handle.remove()
    full_checkpoint, full_log, full_summary = outcome(tmp_path / "full")
    assert [r["epoch"] for r in full_log] == [1, 2, 3]

    points = choose(events.names)
    outs = {where: tmp_path / f"killed_at_{kill_at}" for where, kill_at in points.items()}
    statuses = run_killed(RECIPE, [(outs[where], kill_at) for where, kill_at in points.items()])
    for (where, out), status in zip(outs.items(), statuses):
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, where
        Trainer(cfg, out, resume=True).fit()
        checkpoint, log, summary = outcome(out)
        assert_same_tensors(full_checkpoint["model"], checkpoint["model"], f"{where}: model")
        assert_same_tensors(full_checkpoint["optimizer"], checkpoint["optimizer"], f"{where}: optimizer")
        assert checkpoint["epoch"] == 3, where
        assert log == full_log, where
        assert summary == full_summary, where
        files = sorted(p.name for p in out.iterdir())
        assert files == sorted([".deepspike-lock", ".deepspike-run", *WATCHED]), where  # no temporary files


def test_sigkill_at_any_point_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    check_kills(tmp_path, monkeypatch, lambda names: kill_points(names, SEED))


@pytest.mark.slow
def test_sigkill_at_every_event_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    check_kills(tmp_path, monkeypatch, lambda names: {f"event {i} ({name})": i for i, name in enumerate(names)})


if __name__ == "__main__":
    print(json.dumps(_fork_killed_runs(json.loads(sys.argv[1]))))
