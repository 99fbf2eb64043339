"""``deepspike export RUN --target speck|xylo``: a trained run checked against a chip (offline, no hardware).

``speck`` (:mod:`speck`): rate-coded conv/dense IF nets through Sinabs' DYNAP-CNN layer mapping; ``xylo``
(:mod:`xylo`): dense LIF nets through Rockpool's Xylo mapper and quantisation, with the float, chip (XyloSim's
integer rules) and quantised accuracies on the run's test split (first ``limit`` samples, default all).
"""

from __future__ import annotations

import os

import torch

from deepspike.core.errors import ConfigError
from deepspike.deploy.speck import speck_report
from deepspike.deploy.xylo import xylo_report
from deepspike.training.evaluate import evaluate, limit_samples
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches

TARGETS = ("speck", "xylo")


def target_report(run_dir: str | os.PathLike, target: str, limit: int | None = None) -> dict:
    """The fit report of the run's net on ``target`` (module docstring); ``ConfigError`` if it cannot map."""
    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    config, parts, _ = load_run(run_dir, device="cpu")
    if config.method.name == "ann":  # was "xylo: NIR export supports rate-coded networks ...: wrap a net of your own"
        raise ConfigError(f"--target {target}: {run_dir} is an ANN run: convert it to a spiking net first (deepspike "
                          f"convert {run_dir} --to rate) and check the converted run")
    if target == "speck":
        return {"run": str(run_dir), **speck_report(parts.model, tuple(parts.arch.input_shape))}

    def accuracy(model) -> float:
        batches = limit_samples(make_batches(config, parts.data, "test", torch.device("cpu")), limit)
        return evaluate(model, parts.method, batches)["accuracy"]

    return {"run": str(run_dir), **xylo_report(parts.model, accuracy)}
