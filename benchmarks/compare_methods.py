"""Regenerate the cross-method comparison table (Fashion-MNIST by default) in benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/compare_methods.py --runs-dir runs --analyze --write benchmarks/RESULTS.md

Finds every run directory (a ``config.yaml`` + ``checkpoint.pt``) under ``--runs-dir`` whose data set is
``--dataset``, converted runs included; with ``--analyze`` runs the full ``deepspike analyze`` on each
(writing ``RUN/analysis/``), otherwise reuses ``RUN/analysis/analysis.json`` where present; prints the
Markdown table (``deepspike compare``'s) and, with ``--write``, replaces the block between
``<!-- compare_methods:begin -->`` and ``<!-- compare_methods:end -->`` in that file (appended if absent), written
atomically (a failed write leaves the file as it was).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from deepspike.analysis.compare import comparison_row, load_or_analyze, markdown_table
from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.config import load_config
from deepspike.core.atomic import atomic_write_text
from deepspike.core.errors import UserError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_checks import output_file, whole  # noqa: E402

BEGIN, END = "<!-- compare_methods:begin -->", "<!-- compare_methods:end -->"
ORDER = ("ann", "converted", "stbp", "spikebp", "ttfs", "stdbp")


def find_runs(root: Path, dataset: str) -> list[Path]:
    """Run directories under ``root`` on ``dataset``, sorted by method (``ORDER``) then path."""
    runs = []
    for cfg_path in sorted(root.rglob("config.yaml")):
        run = cfg_path.parent
        if not (run / "checkpoint.pt").is_file():
            continue
        cfg = load_config(cfg_path)
        if cfg.data.name == dataset:
            method = cfg.method.name
            runs.append((ORDER.index(method) if method in ORDER else len(ORDER), str(run), run))
    return [r for *_, r in sorted(runs)]


def write_block(path: Path, text: str) -> None:
    """Put ``text`` between the markers of ``path`` (other content untouched); atomically (``WriteError`` if the
    write fails, ``path`` unchanged)."""
    block = f"{BEGIN}\n{text}{END}"
    old = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    new = (
        pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + block + "\n"
    )
    atomic_write_text(path, new.lstrip("\n"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="run directories (default: all found under --runs-dir)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--analyze", action="store_true", help="run the full analysis of every run first")
    p.add_argument("--limit", type=whole(0), default=0, help="test samples per run (0 = the whole test set)")
    p.add_argument("--preset", default="45nm_fp32", help="energy preset of the energy column")
    p.add_argument("--write", type=output_file, help="Markdown file to update (e.g. benchmarks/RESULTS.md)")
    args = p.parse_args(argv)
    runs = [Path(r) for r in args.runs] or find_runs(Path(args.runs_dir), args.dataset)
    if not runs:
        print(f"no {args.dataset} runs found under {args.runs_dir}", file=sys.stderr)
        return 2
    rows = []
    for run in runs:
        if args.analyze:
            analysis = analyze_run(run, run / "analysis", AnalysisOptions(limit=args.limit or None))
        else:
            analysis = load_or_analyze(run, args.limit or None)
        rows.append(comparison_row(analysis, args.preset))
        print(f"analysed {run}", file=sys.stderr)
    table = markdown_table(rows)
    samples = "the whole test set" if not args.limit else f"the first {args.limit:,} test images"
    command = " ".join(["python", "benchmarks/compare_methods.py", *(argv if argv is not None else sys.argv[1:])])
    note = (
        f"\n{args.dataset}, {samples} per run, energy preset `{args.preset}`; latency T = time steps, t = mean "
        f"TTFS decision time; spikes include input spikes; synops = ACs + MACs counted from the actual spikes "
        f"(ANN: dense MACs). Regenerate: `{command}`.\n"
    )
    print(table, end="")
    if args.write:
        try:
            write_block(args.write, table + note)
        except UserError as e:
            print(f"{p.prog}: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
