"""``deepspike compare RUN_DIR ...``: one table across runs and methods."""

from __future__ import annotations

import argparse

from deepspike import api

NAME = "compare"
HELP = "compare runs: accuracy, latency, spikes, synaptic ops, energy, 4-bit accuracy (Markdown table)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories (or analysis.json files)")
    p.add_argument("--preset", default="45nm_fp32",
                   help="energy preset for the energy column: built in, or one the analyses stored "
                        "(analyze --add-preset); default 45nm_fp32")
    p.add_argument("--limit", type=int, default=1000, help="test samples when a run has no analysis.json yet "
                                                                 "(default 1000; 0 = all)")
    p.add_argument("--out", help="also write the table to this Markdown file (new, empty or an earlier table of "
                                 "compare; not a run's own file)")


def run(args: argparse.Namespace) -> int:
    print(api.compare(args.runs, args.preset, args.limit or None, out=args.out), end="")
    return 0
