"""Make a pretrained-model entry of the package (``deepspike/zoo_models/<name>/``) from a finished run.

    python benchmarks/make_zoo.py RUN NAME --made-from "the command that trained RUN" [--replace]
    python benchmarks/make_zoo.py --refresh-activity NAME

Writes ``config.yaml`` (the run's), ``weights.pt`` (the weights only: the weight average where the run kept one;
refused above ``MAX_WEIGHTS_BYTES``, 4 MiB) and ``card.json``: the full test split's accuracy (evaluated here, as
``deepspike eval`` does), spikes per sample and the ANN/SNN energy ratio (``deepspike analyze`` on the first 1,000
test samples, 45 nm fp32), the accuracy on the packaged sample of the first 200 Fashion-MNIST test images
(``tests/fixtures/fashion_mnist_test_first200.npz``, which ``tests/training/test_pretrained.py`` re-checks), and
the input preprocessing. The entry is written into a staging folder and put in place only when complete: a
failure (weights over the limit, a run that does not load) leaves the zoo as it was, and an existing entry is
replaced only with ``--replace`` (it is restored if the new one fails). ``--refresh-activity NAME`` measures an
existing entry's spikes and energy again from its shipped config and weights (after a change to how spikes are
counted) and rewrites those two card fields only. ``training.pretrained`` documents the format.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.core.atomic import atomic_write_json, atomic_write_text
from deepspike.training.pretrained import (
    CARD_NAME,
    CONFIG_NAME,
    MAX_WEIGHTS_BYTES,
    WEIGHTS_NAME,
    ZOO_DIR,
    accuracy_on,
)
from deepspike.training.reload import evaluate_run, load_run
from deepspike.training.runs import save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "fixtures" / "fashion_mnist_test_first200.npz"


def activity_fields(run: Path) -> dict:
    """``spikes_per_sample`` and ``energy_ann_over_snn`` of the run in ``run`` (first 1,000 test samples, 45 nm
    fp32)."""
    analysis = analyze_run(run, None, AnalysisOptions(limit=1000, bits=(), snrs=(), deletions=(), jitters=(),
                                                      timesteps=False, plots=False))
    activity, energy = analysis["activity"] or {}, analysis["energy"].get("45nm_fp32", {})
    return {"spikes_per_sample": activity.get("spikes_per_sample"), "energy_ann_over_snn": energy.get("ann_over_snn")}


def refresh_activity(name: str) -> None:
    """Measure entry ``name``'s spikes and energy again from its shipped config and weights (a run folder made of
    them in a temporary directory) and rewrite those card fields."""
    folder = ZOO_DIR / name
    card = json.loads((folder / CARD_NAME).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(folder / CONFIG_NAME, Path(tmp) / "config.yaml")
        shutil.copy(folder / WEIGHTS_NAME, Path(tmp) / "checkpoint.pt")
        fields = activity_fields(Path(tmp))
    print(f"{name}: {card['spikes_per_sample']} -> {fields['spikes_per_sample']} spikes per sample, "
          f"{card['energy_ann_over_snn']} -> {fields['energy_ann_over_snn']} ANN/SNN energy")
    atomic_write_json(folder / CARD_NAME, {**card, **fields})


def _card(args: argparse.Namespace, run: Path, config, parts) -> dict:
    """The card of the entry made from ``run`` (all but the sample accuracy, which needs the entry in place)."""
    data = parts.data
    normalize = {"mean": list(data.mean), "std": list(data.std)} if config.data.normalize else None
    return {
        "name": args.name,
        "method": config.method.name,
        "model": config.model.name,
        "dataset": config.data.name,
        "num_classes": data.num_classes,
        "input_shape": list(data.input_shape),
        "input": {"range": [0.0, 1.0], "normalize": normalize},
        "timesteps": getattr(parts.model, "eval_timesteps", None) or getattr(config.method.options, "timesteps", None),
        "test_accuracy": evaluate_run(run)["test_accuracy"],
        **activity_fields(run),
        "made_from": args.made_from,
    }


def _staged(args: argparse.Namespace, run: Path) -> Path:
    """A staging folder beside the zoo holding the new entry's weights, config and card (no sample accuracy yet);
    ``SystemExit`` (nothing left behind) for weights above ``MAX_WEIGHTS_BYTES``."""
    config, parts, _ = load_run(run)
    stage = Path(tempfile.mkdtemp(prefix=f".{args.name}.", dir=ZOO_DIR.parent))
    try:
        save_checkpoint(stage / WEIGHTS_NAME, {"model": parts.model.state_dict()})
        if (stage / WEIGHTS_NAME).stat().st_size > MAX_WEIGHTS_BYTES:
            sys.exit(f"{run}: weights above {MAX_WEIGHTS_BYTES} bytes; not shipped")
        atomic_write_text(stage / CONFIG_NAME, (run / "config.yaml").read_text())
        atomic_write_json(stage / CARD_NAME, _card(args, run, config, parts))
    except BaseException:
        shutil.rmtree(stage)
        raise
    return stage


def _put_in_place(stage: Path, folder: Path) -> dict:
    """Move ``stage`` to ``folder`` (the old entry, if any, set aside first), measure the sample accuracy there and
    write the final card; on any failure the new entry is removed and the old one restored."""
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=ZOO_DIR.parent)) / folder.name
    had_old = folder.exists()
    if had_old:
        folder.rename(old)
    try:
        stage.rename(folder)
        card = json.loads((folder / CARD_NAME).read_text())
        sample = np.load(SAMPLE, allow_pickle=False)
        images = torch.tensor(sample["images"], dtype=torch.float32).unsqueeze(1) / 255.0
        card["sample_accuracy"] = accuracy_on(folder.name, images, torch.tensor(sample["labels"], dtype=torch.long))
        atomic_write_json(folder / CARD_NAME, card)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)
        if had_old:
            old.rename(folder)
        shutil.rmtree(old.parent, ignore_errors=True)
        raise
    shutil.rmtree(old.parent)
    return card


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refresh-activity", metavar="NAME", help="re-measure an entry's spikes and energy")
    ap.add_argument("run", nargs="?")
    ap.add_argument("name", nargs="?")
    ap.add_argument("--made-from", help="the command that trained the run")
    ap.add_argument("--replace", action="store_true", help="replace an existing entry of that name")
    args = ap.parse_args()
    if args.refresh_activity:
        return refresh_activity(args.refresh_activity)
    if not (args.run and args.name and args.made_from):
        ap.error("RUN, NAME and --made-from are needed (or --refresh-activity NAME)")
    if not args.name.isidentifier():  # a folder name in the package: no path separators, dots or spaces
        ap.error(f"NAME must be a Python identifier (letters, digits, _), got {args.name!r}")
    folder = ZOO_DIR / args.name
    if folder.exists() and not args.replace:
        ap.error(f"entry {args.name!r} exists ({folder}); pass --replace to replace it")
    print(_put_in_place(_staged(args, Path(args.run)), folder))


if __name__ == "__main__":
    main()
