"""``deepspike zoo``: the pretrained models shipped in the package, and a check of their accuracy."""

from __future__ import annotations

import argparse

from deepspike import api
from deepspike.core.atomic import strict_json
from deepspike.core.errors import ConfigError

NAME = "zoo"
HELP = ("list the shipped pretrained models (accuracy, spikes, energy); --check re-measures them on the full test set; "
        "--onnx writes one as an ONNX model")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", help="entries to show or check (default: all)")
    p.add_argument("--check", action="store_true",
                   help="evaluate each entry on its data set's full test split and compare with its card")
    p.add_argument("--json", action="store_true", help="print the cards as JSON")
    p.add_argument("--onnx", metavar="PATH", help="write the one entry named (a rate-coded one) as an ONNX model, "
                   "checked by onnxruntime against the net (as `export RUN --onnx`)")
    p.add_argument("--onnx-form", choices=("step", "sequence"), default=None,
                   help="--onnx: 'step' (default, states in and out) or 'sequence' ([T, B, ...] in and out)")


def run(args: argparse.Namespace) -> int:
    if args.onnx is not None or args.onnx_form is not None:
        return _onnx(args)
    names = args.names or [card["name"] for card in api.zoo()]
    cards = [api.zoo_card(name) for name in names]  # every name and card checked before any entry is evaluated
    if args.check:
        rows = [api.check_pretrained(name) for name in names]
        print(strict_json(rows, indent=2))
        return 0 if all(r["matches"] for r in rows) else 1
    if args.json:
        print(strict_json(cards, indent=2))
        return 0
    print(f"{'name':<26} {'method':<11} {'model':<16} {'data':<14} {'T':>4} {'test acc':>9} {'spikes/sample':>14} "
          f"{'ANN/SNN energy':>15}")
    for c in cards:
        energy = f"{c['energy_ann_over_snn']:.2f}" if c.get("energy_ann_over_snn") else "-"
        spikes = f"{c['spikes_per_sample']:,.0f}" if c.get("spikes_per_sample") is not None else "-"
        print(f"{c['name']:<26} {c['method']:<11} {c['model']:<16} {c['dataset']:<14} {c.get('timesteps') or '-':>4} "
              f"{100 * c['test_accuracy']:>8.2f}% {spikes:>14} {energy:>15}")
    return 0


def _onnx(args: argparse.Namespace) -> int:
    """``zoo NAME --onnx PATH``: one entry, nothing else asked."""
    if args.onnx is None:
        raise ConfigError("--onnx-form shapes the ONNX file written with --onnx PATH; give --onnx")
    if len(args.names) != 1 or args.check or args.json:
        raise ConfigError(f"--onnx writes one entry: name exactly one (got {len(args.names)}), without --check or "
                          "--json")
    print(strict_json(api.export_pretrained(args.names[0], args.onnx, args.onnx_form), indent=2))
    return 0
