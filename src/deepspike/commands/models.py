"""``deepspike models``: every registered model with its parameter and MAC counts."""

from __future__ import annotations

import argparse

NAME = "models"
HELP = "list registered models with their parameter counts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classes", type=int, default=10, help="number of classes to size the head (default 10)")


def run(args: argparse.Namespace) -> int:
    from deepspike.models import create_architecture, list_models
    from deepspike.models.costs import count_macs, count_parameters

    print(f"{'model':<18} {'input':<12} {'params':>12} {'MACs':>15}  paper")
    for entry in list_models():
        arch = create_architecture(entry.name, num_classes=args.classes)
        shape = "x".join(map(str, entry.default_input_shape))
        print(
            f"{entry.name:<18} {shape:<12} {count_parameters(arch):>12,} {count_macs(arch):>15,}"
            f"  {entry.paper}"
        )
    return 0
