"""``deepspike methods``: every training method with its options and defaults."""

from __future__ import annotations

import argparse
import dataclasses

NAME = "methods"
HELP = "list training methods and their options"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from deepspike.methods import list_methods

    for cls in list_methods():
        print(f"{cls.name}: {cls.description}")
        for f in dataclasses.fields(cls.Options):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            print(f"    {f.name} = {default!r}")
    return 0
