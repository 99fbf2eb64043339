"""``deepspike datasets``: the registered dataset names."""

from __future__ import annotations

import argparse

NAME = "datasets"
HELP = "list datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from deepspike.data import list_datasets

    print("\n".join(list_datasets()))
    return 0
