"""Generate the documentation pages that come from the code: run with the project's python before ``mkdocs build``.

* ``docs/generated/cli.md``: every command's ``--help``, from the parser the CLI itself builds;
* ``docs/generated/tutorials/<name>.md``: each tutorial of ``docs/tutorials/*.py`` run from a fresh process, the
  page made of its docstring (the prose), its code and the output it printed; a tutorial that fails fails the
  build (this is how CI runs the tutorials);
* ``docs/generated/results.md``: ``benchmarks/RESULTS.md``;
* ``docs/generated/zoo.md``: the shipped pretrained models, from their cards;
* ``docs/generated/recipe.md``: every recipe key with its default (``deepspike.config.reference``).

Usage: ``python docs/build_pages.py [--skip-tutorials]`` (``make docs`` runs it).
"""

from __future__ import annotations

import argparse
import ast
import json
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


def zoo_page() -> str:
    import deepspike as ds

    lines = ["# Pretrained models\n",
             "Small trained checkpoints shipped in the package (each at most 4 MB), at least one per method, for "
             "Fashion-MNIST (`stbp_fmnist_vgg_tet_plif`: 94.26%, the best directly trained one). `deepspike zoo` "
             "lists them; `ds.pretrained(name)` returns the network in eval mode; "
             "`deepspike zoo --check` re-measures every one on the full test set (the data must be installed); "
             "`tests/training/test_pretrained.py` checks each on a packaged sample of 200 test images.\n",
             "```python\nimport deepspike as ds\n\nmodel = ds.pretrained(\"stbp_fmnist\")   # images [B, 1, 28, 28] "
             "in [0, 1] -> scores [B, 10]\n```\n",
             "| name | method | model | T | test accuracy (10,000 images) | spikes per sample | ANN / SNN energy "
             "(45 nm fp32) | input | made by |", "|---|---|---|---|---|---|---|---|---|"]
    for c in ds.zoo():
        norm = "standardised (mean/std in the card)" if c["input"].get("normalize") else "[0, 1]"
        spikes = f"{c['spikes_per_sample']:,.0f}" if c.get("spikes_per_sample") is not None else "-"
        energy = f"{c['energy_ann_over_snn']:.2f}" if c.get("energy_ann_over_snn") else "-"
        lines.append(f"| `{c['name']}` | {c['method']} | {c['model']} | {c.get('timesteps') or '-'} | "
                     f"{100 * c['test_accuracy']:.2f}% | {spikes} | {energy} | {norm} | `{c['made_from']}` |")
    return "\n".join(lines) + "\n"


def recipe_page() -> str:
    import deepspike as ds
    from deepspike.config.reference import method_keys, section_doc, section_keys

    names = {"model.name": [row["name"] for row in ds.model_table()], "data.name": ds.dataset_names()}
    parts = ["# Recipe reference\n",
             "A recipe is a YAML file of these sections; a key left out takes its default, and any key can be set on "
             "the command line as `section.key=value` (`deepspike train RECIPE train.epochs=3 --out DIR`). A value "
             "of the wrong type or out of range is refused with one line naming the key and what is valid. Made "
             "from the schema (`deepspike.config.schema`, the methods' `Options`) by `docs/build_pages.py`.\n"]
    for section, keys in section_keys().items():
        parts.append(f"## `{section}`\n\n{_md_doc(section_doc(section))}\n\n{_key_table(keys, names)}\n")
    parts.append("## `method`\n\n`method.name` picks the method (default `stbp`); its other keys are that method's "
                 "options (`deepspike methods`; the method pages under Methods say what each does).\n")
    descriptions = {row["name"]: row["description"] for row in ds.method_table()}
    for name, keys in method_keys().items():
        parts.append(f"### `method.name: {name}`\n\n{descriptions[name]}.\n\n{_key_table(keys, {})}\n")
    return "\n".join(parts)


def _md_doc(doc: str) -> str:
    """A docstring as Markdown: reST's double backquotes as code spans, lines joined."""
    return " ".join(doc.replace("``", "`").split())


def _key_table(keys, names: dict) -> str:
    rows = ["| key | default | type | valid values |", "|---|---|---|---|"]
    for k in keys:
        valid = ", ".join(f"`{v}`" for v in (k.choices or names.get(k.key, ())))
        default = json.dumps(k.default)
        kind = k.type.replace(" | ", " or ")  # a pipe would end the table cell
        rows.append(f"| `{k.key}` | `{default}` | `{kind}` | {valid} |")
    return "\n".join(rows)


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
    (OUT / "zoo.md").write_text(zoo_page())
    (OUT / "recipe.md").write_text(recipe_page())
    shutil.copyfile(ROOT / "benchmarks" / "RESULTS.md", OUT / "results.md")
    for script in sorted((DOCS / "tutorials").glob("t*.py")):
        page = (f"# {script.stem}\n\nNot run in this build (`--skip-tutorials`).\n" if args.skip_tutorials
                else tutorial_page(script))
        (OUT / "tutorials" / f"{script.stem}.md").write_text(page)


if __name__ == "__main__":
    main()
