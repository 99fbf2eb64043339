"""NIR conformance matrix: every rate-coded net family exported by deepspike, run by each installed tool.

Writes ``benchmarks/results/nir/conformance.json`` (per tool/family/neuron/reset: equal or the measured
difference, and the known cause; ``missing``: the tools of ``deepspike.deploy.peers.TOOLS`` not installed here, which
have no rows) and ``conformance.md`` (the table, a column per installed tool, then a line naming the missing tools);
both written atomically. Run in the NIR venv:

    make .nir-venv/.ok && OMP_NUM_THREADS=1 .nir-venv/bin/python benchmarks/nir/conformance.py [--steps 1000]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import warnings
from pathlib import Path

from deepspike.core.atomic import strict_json
from deepspike.deploy.conformance import check_tool
from deepspike.deploy.families import FAMILIES, NEURONS, RESETS, build, sample_input
from deepspike.deploy.peers import installed, not_installed, version
from deepspike.deploy.peers.known_issues import known_issue

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_checks import whole, write_result  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "nir"


def _cell(r: dict) -> str:
    if r.get("equal"):
        return "same"
    if "error" in r:
        return "error"
    return f"{r['differing']} differ"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=whole(1), default=1000)
    p.add_argument("--batch", type=whole(1), default=2)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    tools = installed()
    missing = not_installed(tools)
    rows = []
    for tool, (fam, neu, rst) in itertools.product(tools, itertools.product(FAMILIES, NEURONS, RESETS)):
        r = check_tool(tool, build(fam, neu, rst), sample_input(fam, args.steps, args.batch),
                       round_delays=fam == "delayed")
        rows.append({"tool": tool, "version": version(tool), "family": fam, "neuron": neu, "reset": rst, **r,
                     "known_issue": None if r.get("equal") else known_issue(tool, fam, neu, rst)})
        print(tool, fam, neu, rst, _cell(r), flush=True)
    write_result(p, OUT / "conformance.json", strict_json({"steps": args.steps, "batch": args.batch, "rows": rows,
                                                           "missing": missing}, indent=1) + "\n")
    text = markdown(rows, tools, missing)
    write_result(p, OUT / "conformance.md", text + "\n")
    print(text)


def markdown(rows: list[dict], tools: list[str], missing: list[str]) -> str:
    """The matrix: a row per net, a column per installed tool; then the tools not installed, which have none."""
    combos = [f"{f} {n} {r}" for f, n, r in itertools.product(FAMILIES, NEURONS, RESETS)]
    lines = ["| net | " + " | ".join(f"{t} {version(t)}" for t in tools) + " |", "|---" * (len(tools) + 1) + "|"]
    for c in combos:
        cells = [_cell(next(r for r in rows if r["tool"] == t and f"{r['family']} {r['neuron']} {r['reset']}" == c))
                 for t in tools]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    if missing:
        lines += ["", f"Not installed here, so not in the matrix: {', '.join(missing)}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
