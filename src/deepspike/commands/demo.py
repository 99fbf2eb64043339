"""``deepspike demo``: what ``make demo`` runs."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "train a small spiking conv net on digits (about two minutes) and print its spikes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the demo recipe")


def run(args: argparse.Namespace) -> int:
    from deepspike.commands.demo_run import run_demo

    run_demo(args.out, list(args.overrides))
    return 0
