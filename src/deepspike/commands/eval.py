"""``deepspike eval RUN_DIR``: reload a run's checkpoint and report its accuracy."""

from __future__ import annotations

import argparse

from deepspike import api
from deepspike.core.atomic import strict_json

NAME = "eval"
HELP = "reload a run's checkpoint and report its test accuracy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument(
        "--unquantised",
        action="store_true",
        help="score a QCFS ANN with clip(x, 0, lambda) in place of each QCFS: the accuracy its converted SNN tends to",
    )
    p.add_argument(
        "--round-delays",
        action="store_true",
        help="score a net with learnable synaptic delays (Linear(delays=D), dsnn) with each delay rounded to a whole "
        "step, as hardware runs it; the output says \"delays_rounded\": true (the checkpoint is not changed)",
    )


def run(args: argparse.Namespace) -> int:
    result = api.evaluate(args.run_dir, split=args.split, unquantised=args.unquantised, round_delays=args.round_delays)
    print(strict_json(result, indent=2))
    return 0
