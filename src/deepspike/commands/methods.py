"""``deepspike methods``: every training method with its options, defaults and (where fixed) valid values."""

from __future__ import annotations

import argparse

from deepspike import api

NAME = "methods"
HELP = "list training methods and their options"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    for row in api.method_table():
        print(f"{row['name']}: {row['description']}")
        for key, default in row["options"].items():
            choices = row["choices"].get(key)
            print(f"    {key} = {default!r}" + (f"  ({' | '.join(map(str, choices))})" if choices else ""))
    return 0
