"""``deepspike timesteps RUN_DIR...``: accuracy against inference T and against training T (lee2020 Fig. 7).

For every run directory (a rate-coded run: ``stbp``, ``spikebp``, ...), the checkpoint is evaluated at
each inference T of ``--eval-T``; runs trained with different ``method.timesteps`` give the curve
against training T (each evaluated at its own ``eval_timesteps``). Writes, under ``--out``:
``accuracy_vs_inference_T.csv`` (run, train_T, inference_T, accuracy, samples), ``accuracy_vs_training_T.csv``
(run, train_T, inference_T, accuracy, samples) and the two plots ``accuracy_vs_inference_T.png`` and
``accuracy_vs_training_T.png``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

NAME = "timesteps"
HELP = "accuracy against training T and inference T of rate-coded runs (CSV + PNG)"
FIELDS = ("run", "train_T", "inference_T", "accuracy", "samples")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories (from deepspike train)")
    p.add_argument(
        "--eval-T",
        default="1,2,4,8,16,32,64,100",
        help="comma-separated inference time steps (default: %(default)s)",
    )
    p.add_argument("--out", required=True, help="directory for the CSV files and plots")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--max-samples", type=int, default=None, help="evaluate on the first N samples only")


def parse_steps(text: str) -> list[int]:
    """``"1,2,8"`` -> ``[1, 2, 8]``; every entry must be an integer >= 1."""
    from deepspike.core.errors import ConfigError

    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = []
    if not steps or min(steps) < 1:
        raise ConfigError(f"bad --eval-T {text!r}: expected comma-separated integers >= 1, e.g. 1,4,16")
    return steps


def accuracy_at(model, method, batches, timesteps: int, max_samples: int | None = None) -> tuple[float, int]:
    """Fraction of correct predictions of ``model(x, timesteps=T)`` over the first ``max_samples`` samples."""
    from deepspike.train.evaluate import evaluate, limit_samples

    result = evaluate(model, method, limit_samples(batches, max_samples), timesteps=timesteps)
    return result["accuracy"], result["samples"]


def sweep(
    run_dirs: list[str], eval_steps: list[int], split: str = "test", max_samples: int | None = None
) -> tuple[list[dict], list[dict]]:
    """``(rows_vs_inference_T, rows_vs_training_T)`` for ``run_dirs`` (rows keyed by ``FIELDS``)."""
    from deepspike.core.errors import ConfigError, DataNotFoundError
    from deepspike.train.reload import load_run
    from deepspike.train.run_setup import make_batches

    by_inference, by_training = [], []
    for run_dir in run_dirs:
        config, parts, _ = load_run(run_dir)
        model = parts.model
        if not hasattr(model, "eval_timesteps"):
            raise ConfigError(f"run {run_dir} (method {config.method.name!r}) is not a time-stepped rate network")
        batches = make_batches(config, parts.data, split, next(model.parameters()).device)
        if batches is None:
            raise DataNotFoundError(f"run {run_dir} has no {split!r} split")
        train_t = model.timesteps
        for steps in eval_steps:
            acc, n = accuracy_at(model, parts.method, batches, steps, max_samples)
            by_inference.append(dict(run=str(run_dir), train_T=train_t, inference_T=steps, accuracy=acc, samples=n))
        acc, n = accuracy_at(model, parts.method, batches, model.eval_timesteps, max_samples)
        by_training.append(
            dict(run=str(run_dir), train_T=train_t, inference_T=model.eval_timesteps, accuracy=acc, samples=n)
        )
    by_training.sort(key=lambda r: r["train_T"])
    return by_inference, by_training


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict], x_key: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    if x_key == "inference_T":
        for run in dict.fromkeys(r["run"] for r in rows):
            pts = [r for r in rows if r["run"] == run]
            ax.plot(
                [r["inference_T"] for r in pts],
                [100 * r["accuracy"] for r in pts],
                "o-",
                label=f"trained at T={pts[0]['train_T']}",
            )
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    else:
        ax.plot([r["train_T"] for r in rows], [100 * r["accuracy"] for r in rows], "o-")
    ax.set_xlabel("inference time steps" if x_key == "inference_T" else "training time steps")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    steps = parse_steps(args.eval_T)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    by_inference, by_training = sweep(args.runs, steps, args.split, args.max_samples)
    write_csv(by_inference, out / "accuracy_vs_inference_T.csv")
    write_csv(by_training, out / "accuracy_vs_training_T.csv")
    plot(by_inference, "inference_T", out / "accuracy_vs_inference_T.png", "accuracy vs inference T")
    plot(by_training, "train_T", out / "accuracy_vs_training_T.png", "accuracy vs training T")
    for r in by_inference:
        print(f"{r['run']}\ttrain_T={r['train_T']}\tinference_T={r['inference_T']}\taccuracy={r['accuracy']:.4f}")
    print(f"wrote {out}/accuracy_vs_inference_T.csv, accuracy_vs_training_T.csv and .png plots")
    return 0
