"""Session 24: re-measure the shipped pretrained entries' spikes and energy under the one pricing rule.

For each entry of ``deepspike/zoo_models`` a run folder is rebuilt from its ``config.yaml`` and ``weights.pt``
(checkpoint ``{"model": weights, "epoch": the recipe's epochs}``), analysed as ``benchmarks/make_zoo.py`` does
(first 1,000 test images, 45 nm fp32) and compared with the card. ``--remake`` then reruns ``make_zoo.py`` on the
entries whose figures changed (same weights, the card's own ``made_from``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session24/zoo_energy_recheck.py OUT [--remake]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.config import load_config
from deepspike.training.checkpoint_format import read_checkpoint_file
from deepspike.training.pretrained import CARD_NAME, ZOO_DIR
from deepspike.training.runs import save_checkpoint

ROOT = Path(__file__).resolve().parents[3]


def rebuild(entry: Path, run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(entry / "config.yaml", run / "config.yaml")
    epochs = load_config(entry / "config.yaml").train.epochs  # what the entry's recipe trained (0 for none)
    save_checkpoint(run / "checkpoint.pt", {"model": read_checkpoint_file(entry / "weights.pt")["model"],
                                            "epoch": epochs})


def measure(run: Path) -> dict:
    options = AnalysisOptions(limit=1000, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)
    analysis = analyze_run(run, None, options)
    activity = analysis["activity"] or {}
    return {"spikes_per_sample": activity.get("spikes_per_sample"),
            "energy_ann_over_snn": analysis["energy"].get("45nm_fp32", {}).get("ann_over_snn")}


def main() -> None:
    out, remake = Path(sys.argv[1]), "--remake" in sys.argv
    rows = []
    for entry in sorted(p for p in ZOO_DIR.iterdir() if (p / CARD_NAME).is_file()):
        card = json.loads((entry / CARD_NAME).read_text())
        if card["method"] == "ann":
            continue
        run = out / entry.name
        rebuild(entry, run)
        new = measure(run)
        changed = any(abs((new[k] or 0) - (card[k] or 0)) > 1e-9 * max(1.0, abs(card[k] or 0)) for k in new)
        rows.append({"name": entry.name, **{f"card_{k}": card[k] for k in new}, **new, "changed": changed})
        print(json.dumps(rows[-1]), flush=True)
        if remake and changed:
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_zoo.py"), str(run), entry.name,
                            "--made-from", card["made_from"]], check=True)
    (out / "zoo_energy_recheck.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
