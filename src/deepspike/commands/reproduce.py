"""``deepspike reproduce RECIPE --out DIR``: train a recipe and check it reaches the figure it records."""

from __future__ import annotations

import argparse

from deepspike import api
from deepspike.commands.train import split_config_arg
from deepspike.core.atomic import strict_json

NAME = "reproduce"
HELP = "train a recipe and compare its test accuracy with the recipe's expected figure and tolerance"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML recipe with an expected: section (test_accuracy, tolerance, measured_by)")
    p.add_argument("overrides", nargs="*", help="key=value overrides (a changed recipe may not reach its figure)")
    p.add_argument("--out", required=True, help="run directory; reproduce.json is written there")
    p.add_argument("--resume", action="store_true", help="continue an interrupted reproduction in --out")


def run(args: argparse.Namespace) -> int:
    """Exit status 0 when the figure is reproduced within its tolerance, 1 when not (under ``torchrun``: rank 0's
    status; the other ranks print nothing and exit 0)."""
    config, overrides = split_config_arg(args.config, args.overrides)
    report = api.reproduce(config, args.out, overrides, resume=args.resume)
    if report is None:
        return 0
    print(strict_json(report, indent=2))
    return 0 if report["reproduced"] else 1
