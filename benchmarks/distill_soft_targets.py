"""How soft a teacher's targets are: the mean, over a split, of the largest class probability of
``softmax(scores / tau)`` (``Method.class_scores``), for each temperature tau. Near ``1 / classes`` the soft term of
distillation pulls a student towards uniform outputs (docs/methods/distillation.md).

    python benchmarks/distill_soft_targets.py RUN_DIR --temperatures 4,1 [--split test]

Prints one line per temperature and, with ``--json``, writes ``{"run", "split", "samples", "accuracy", "largest":
{tau: mean largest probability}}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from deepspike.training.evaluate import eval_pass
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches


def soft_target_peaks(run_dir: str, temperatures: list[float], split: str = "test") -> dict:
    """Mean largest probability of ``softmax(class_scores / tau)`` over ``split`` for each tau, and the accuracy."""
    config, parts, _ = load_run(run_dir, device="cpu")
    batches = make_batches(config, parts.data, split, torch.device("cpu"), training=False)
    if batches is None:
        raise SystemExit(f"{run_dir} has no {split} split")
    largest = dict.fromkeys(temperatures, 0.0)
    correct = samples = 0
    with eval_pass(parts.model), torch.no_grad():
        for x, y in batches:
            scores = parts.method.class_scores(parts.model(x)).double()
            for tau in temperatures:
                largest[tau] += float(torch.softmax(scores / tau, dim=-1).amax(dim=-1).sum())
            correct += int((scores.argmax(dim=-1) == y).sum())
            samples += len(y)
    return {"run": str(run_dir), "split": split, "samples": samples, "accuracy": correct / samples,
            "largest": {str(tau): total / samples for tau, total in largest.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--temperatures", default="4,1", help="comma-separated tau (4,1)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = soft_target_peaks(args.run_dir, [float(t) for t in args.temperatures.split(",")], args.split)
    print(f"{args.run_dir}: {result['samples']} {args.split} samples, accuracy {result['accuracy']:.4f}")
    for tau, peak in result["largest"].items():
        print(f"  tau {tau}: mean largest probability {peak:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
