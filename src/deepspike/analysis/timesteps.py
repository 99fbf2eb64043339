"""Accuracy against inference T and against training T of rate-coded runs (lee2020 Fig. 7).

For every run directory (a time-stepped rate network: ``stbp``, ``spikebp``, ``converted``, ...), the
checkpoint is evaluated at each inference T; runs trained with different ``method.timesteps`` give the curve
against training T (each evaluated at its own ``eval_timesteps``). ``timestep_sweep`` writes, under ``out``:
``accuracy_vs_inference_T.csv`` and ``accuracy_vs_training_T.csv`` (columns ``FIELDS``) and the two plots
``accuracy_vs_inference_T.png`` and ``accuracy_vs_training_T.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from deepspike.analysis.sweeps import runs_at_any_timesteps, takes_timesteps
from deepspike.core.atomic import atomic_write_csv
from deepspike.core.errors import ConfigError, DataNotFoundError
from deepspike.core.plotting import pyplot, save_figure
from deepspike.layers.event_frames import DeltaEncoder, FrameEncoder
from deepspike.layers.population_encoder import PopulationEncoder, is_sequence
from deepspike.training.evaluate import evaluate, limit_samples
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches
from deepspike.training.runtime import autocast_dtype, model_device

FIELDS = ("run", "train_T", "inference_T", "accuracy", "samples")
DEFAULT_EVAL_STEPS = (1, 2, 4, 8, 16, 32, 64, 100)
"""The inference T swept when none are given."""


def steps_held(model, batches) -> int | None:
    """The steps ``T'`` each sample holds for a net whose encoder takes its steps from the samples (event frames,
    sequences, delta coding, population coding of sequences), else None (any T)."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, FrameEncoder | DeltaEncoder | PopulationEncoder):
        return None
    x = next(iter(batches))[0]
    if isinstance(encoder, PopulationEncoder) and not is_sequence(x):  # population-coded images: any T
        return None
    return int(x.shape[1])  # x [B, T', ...]


def default_eval_steps(held: int | None) -> list[int]:
    """``DEFAULT_EVAL_STEPS``; with samples that hold ``held`` steps (``steps_held``), only those up to ``held``, and
    ``held`` itself."""
    if held is None:
        return list(DEFAULT_EVAL_STEPS)
    return sorted({t for t in DEFAULT_EVAL_STEPS if t <= held} | {held})


def inference_steps(run_dir: str | Path, model, batches, eval_steps: Sequence[int] | None) -> list[int]:
    """The inference T at which ``model`` is scored: ``eval_steps``, or None: ``default_eval_steps`` of the steps its
    samples hold, and for a net of fixed T (PSN's ``[T, T]`` weights, ``sweeps.runs_at_any_timesteps`` False) its own
    ``eval_timesteps`` only (the default list failed at T = 1). ``eval_steps`` past the steps the samples hold, or
    other than a fixed-T net's own, is a one-line ``ConfigError`` naming the run."""
    held = steps_held(model, batches)
    if eval_steps is not None and held is not None and max(eval_steps) > held:
        raise ConfigError(f"run {run_dir}: --eval-T {max(eval_steps)} asks for more steps than its samples hold "
                          f"({held})")
    if runs_at_any_timesteps(model):
        return list(eval_steps) if eval_steps is not None else default_eval_steps(held)
    own = model.eval_timesteps
    if eval_steps is not None and list(eval_steps) != [own]:
        raise ConfigError(f"run {run_dir}: its net (PSN) runs at its own T={own} only, not at --eval-T "
                          f"{','.join(map(str, eval_steps))}; give --eval-T {own} or leave --eval-T out")
    return [own]


def accuracy_at(model, method, batches, timesteps: int, max_samples: int | None = None,
                precision: torch.dtype | None = None) -> tuple[float, int]:
    """Fraction of correct predictions of ``model(x, timesteps=T)`` over the first ``max_samples`` samples;
    ``precision``: the run's autocast dtype (``train.precision``), None for float32."""
    result = evaluate(model, method, limit_samples(batches, max_samples), timesteps=timesteps, precision=precision)
    return result["accuracy"], result["samples"]


def sweep(
    run_dirs: Sequence[str | Path], eval_steps: Sequence[int] | None, split: str = "test",
    max_samples: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """``(rows_vs_inference_T, rows_vs_training_T)`` for ``run_dirs`` (rows keyed by ``FIELDS``); ``eval_steps``
    None: each run's :func:`default_eval_steps`."""
    by_inference, by_training = [], []
    for run_dir in run_dirs:
        config, parts, _ = load_run(run_dir)
        model = parts.model
        if not takes_timesteps(model):
            raise ConfigError(f"run {run_dir} (method {config.method.name!r}) is not a time-stepped rate network")
        batches = make_batches(config, parts.data, split, model_device(model), training=False)
        if batches is None:
            raise DataNotFoundError(f"run {run_dir} has no {split!r} split")
        row = dict(run=str(run_dir), train_T=model.timesteps)
        precision = autocast_dtype(config.train.precision)
        for steps in inference_steps(run_dir, model, batches, eval_steps):
            acc, n = accuracy_at(model, parts.method, batches, steps, max_samples, precision)
            by_inference.append(dict(row, inference_T=steps, accuracy=acc, samples=n))
        acc, n = accuracy_at(model, parts.method, batches, model.eval_timesteps, max_samples, precision)
        by_training.append(dict(row, inference_T=model.eval_timesteps, accuracy=acc, samples=n))
    by_training.sort(key=lambda r: r["train_T"])
    return by_inference, by_training


def plot(rows: list[dict], x_key: str, path: Path, title: str) -> None:
    """Accuracy (%) against ``x_key``: one line per run against inference T (log axis), one line against
    training T."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if x_key == "inference_T":
        for run in dict.fromkeys(r["run"] for r in rows):
            pts = [r for r in rows if r["run"] == run]
            xs, ys = [r["inference_T"] for r in pts], [100 * r["accuracy"] for r in pts]
            ax.plot(xs, ys, "o-", label=f"trained at T={pts[0]['train_T']}")
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    else:
        ax.plot([r["train_T"] for r in rows], [100 * r["accuracy"] for r in rows], "o-")
    ax.set_xlabel("inference time steps" if x_key == "inference_T" else "training time steps")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def timestep_sweep(
    run_dirs: Sequence[str | Path], eval_steps: Sequence[int] | None, out: str | Path, split: str = "test",
    max_samples: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """``sweep`` and write its CSV files and plots into ``out``; returns the rows."""
    out = Path(out)
    by_inference, by_training = sweep(run_dirs, eval_steps, split, max_samples)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(out / "accuracy_vs_inference_T.csv", by_inference, FIELDS)
    atomic_write_csv(out / "accuracy_vs_training_T.csv", by_training, FIELDS)
    plot(by_inference, "inference_T", out / "accuracy_vs_inference_T.png", "accuracy vs inference T")
    plot(by_training, "train_T", out / "accuracy_vs_training_T.png", "accuracy vs training T")
    return by_inference, by_training
