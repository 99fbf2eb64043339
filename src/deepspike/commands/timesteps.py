"""``deepspike timesteps RUN_DIR... --eval-T 1,2,4 --out DIR``: accuracy against inference T and training T of
rate-coded runs (CSV + PNG; ``deepspike.analysis.timesteps`` says what is written)."""

from __future__ import annotations

import argparse

from deepspike import api
from deepspike.core.errors import ConfigError

NAME = "timesteps"
HELP = "accuracy against training T and inference T of rate-coded runs (CSV + PNG)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories (from deepspike train)")
    p.add_argument(
        "--eval-T",
        default=None,
        help="comma-separated inference time steps (default: 1,2,4,8,16,32,64,100; for event frames and sequences "
        "those up to the steps a sample holds, and that number; for a net of fixed T (PSN) its own T)",
    )
    p.add_argument("--out", required=True, help="directory for the CSV files and plots")
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="the split to score (default test)")
    p.add_argument("--max-samples", type=int, default=None, help="evaluate on the first N samples only")


def parse_steps(text: str | None) -> list[int] | None:
    """``"1,2,8"`` -> ``[1, 2, 8]``; every entry must be an integer >= 1, each given once, none left empty. None
    (not given) stays None: the default list."""
    if text is None:
        return None
    try:
        steps = [int(s) for s in text.split(",")]
    except ValueError:
        steps = []
    if not steps or min(steps) < 1 or len(set(steps)) < len(steps):
        raise ConfigError(f"bad --eval-T {text!r}: expected distinct comma-separated integers >= 1, e.g. 1,4,16")
    return steps


def run(args: argparse.Namespace) -> int:
    by_inference, _ = api.timestep_sweep(args.runs, parse_steps(args.eval_T), args.out, args.split, args.max_samples)
    for r in by_inference:
        print(f"{r['run']}\ttrain_T={r['train_T']}\tinference_T={r['inference_T']}\taccuracy={r['accuracy']:.4f}")
    print(f"wrote {args.out}/accuracy_vs_inference_T.csv, accuracy_vs_training_T.csv and .png plots")
    return 0
