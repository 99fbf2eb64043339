"""``torchrun_train(recipe, out, timeout)``: ``deepspike train RECIPE --out OUT`` under ``torch.distributed.run``
with two local processes (gloo on the CPU, one thread each); returns the finished ``subprocess.CompletedProcess``.
``one_and_two_processes(recipe, tmp_path, timeout)``: the recipe trained in this process (``tmp_path/one``) and by two
(``tmp_path/two``, asserted to succeed); returns both final checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deepspike.config import load_config
from deepspike.training.runs import load_checkpoint
from deepspike.training.trainer import Trainer


def torchrun_train(recipe: list[str], out: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "deepspike",
           "train", *recipe, "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def one_and_two_processes(recipe: list[str], tmp_path: Path, timeout: float) -> tuple[dict, dict]:
    Trainer(load_config(None, recipe), tmp_path / "one").fit()
    proc = torchrun_train(recipe, tmp_path / "two", timeout)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return load_checkpoint(tmp_path / "one" / "checkpoint.pt"), load_checkpoint(tmp_path / "two" / "checkpoint.pt")
