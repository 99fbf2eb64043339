"""Generate the documentation pages that come from the code: run with the project's python before ``mkdocs build``.

* ``docs/generated/cli.md``: every command's ``--help``, from the parser the CLI itself builds;
* ``docs/generated/tutorials/<name>.md``: each tutorial of ``docs/tutorials/*.py`` run from a fresh process, the
  page made of its docstring (the prose), its code and the output it printed; a tutorial that fails fails the
  build (this is how CI runs the tutorials);
* ``docs/generated/results.md``: ``benchmarks/RESULTS.md``.

Usage: ``python docs/build_pages.py [--skip-tutorials]`` (``make docs`` runs it).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
OUT = DOCS / "generated"


def cli_page() -> str:
    from deepspike.cli import build_parser

    parser = build_parser()
    parts = ["# Command-line reference\n", "Every command of `deepspike`, as `deepspike COMMAND --help` prints it.\n",
             "```text\n" + parser.format_help().rstrip() + "\n```\n"]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts.append(f"## `deepspike {name}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def tutorial_page(script: Path) -> str:
    """Run ``script`` (exit status 0 or ``SystemExit``) and return its page."""
    source = script.read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or script.stem
    title, _, prose = doc.partition("\n")
    body_start = tree.body[1].lineno - 1 if len(tree.body) > 1 else 0
    code = "\n".join(source.splitlines()[body_start:]).strip()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "MPLBACKEND": "Agg"}
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"tutorial {script.name} failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    print(f"{script.name}: ran in {seconds:.0f} s", file=sys.stderr)
    return (f"# {title.strip()}\n\n{prose.strip()}\n\nThe script: `docs/tutorials/{script.name}` (run it with "
            f"`.venv/bin/python docs/tutorials/{script.name}`).\n\n```python\n{code}\n```\n\n"
            f"What it printed when these pages were built ({seconds:.0f} s on the build machine):\n\n"
            f"```text\n{run.stdout.rstrip()}\n```\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-tutorials", action="store_true", help="do not run the tutorials (pages say so)")
    args = ap.parse_args()
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "tutorials").mkdir(parents=True)
    (OUT / "cli.md").write_text(cli_page())
    shutil.copyfile(ROOT / "benchmarks" / "RESULTS.md", OUT / "results.md")
    for script in sorted((DOCS / "tutorials").glob("t*.py")):
        page = (f"# {script.stem}\n\nNot run in this build (`--skip-tutorials`).\n" if args.skip_tutorials
                else tutorial_page(script))
        (OUT / "tutorials" / f"{script.stem}.md").write_text(page)


if __name__ == "__main__":
    main()
