"""Command-line interface: ``deepspike COMMAND ...`` (commands live in ``deepspike.commands``).

Errors a user can cause print one line (``deepspike: error: ...``) and exit with status 2, without a
traceback and without writing over an existing run.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from deepspike.commands import COMMANDS
from deepspike.core.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepspike", description="Train, convert, analyse and export deep spiking neural networks."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"deepspike.commands.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as e:
        print(f"deepspike: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "deepspike: interrupted (finished epochs are checkpointed; continue with --resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
