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


def run(args: argparse.Namespace) -> int:
    print(strict_json(api.evaluate(args.run_dir, split=args.split, unquantised=args.unquantised), indent=2))
    return 0
