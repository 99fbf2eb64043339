"""``deepspike datasets``: the registered dataset names."""

from __future__ import annotations

import argparse

from deepspike import api

NAME = "datasets"
HELP = "list datasets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("\n".join(api.dataset_names()))
    return 0
