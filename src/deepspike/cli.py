"""Command-line interface: ``deepspike train|eval|models|methods|datasets|demo``.

Errors a user can cause print one line (``deepspike: error: ...``) and exit with status 2, without a
traceback and without writing over an existing run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepspike.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as e:
        print(f"deepspike: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepspike: interrupted (the last finished epoch is checkpointed; continue with --resume)",
              file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepspike", description="Train, convert, analyse and export deep SNNs.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe: deepspike train CONFIG.yaml key=value ... --out DIR")
    t.add_argument("config", nargs="?", help="YAML recipe (defaults when omitted)")
    t.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=3")
    t.add_argument("--out", required=True, help="run directory (config, metrics, checkpoint, summary)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(run=_cmd_train)

    e = sub.add_parser("eval", help="reload a run's checkpoint and report its test accuracy")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.set_defaults(run=_cmd_eval)

    m = sub.add_parser("models", help="list registered models with their parameter counts")
    m.set_defaults(run=_cmd_models)
    me = sub.add_parser("methods", help="list training methods and their options")
    me.set_defaults(run=_cmd_methods)
    d = sub.add_parser("datasets", help="list datasets")
    d.set_defaults(run=_cmd_datasets)

    demo = sub.add_parser("demo", help="train a small spiking conv net on digits (about two minutes)")
    demo.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    demo.add_argument("overrides", nargs="*", help="key=value overrides of the demo recipe")
    demo.set_defaults(run=_cmd_demo)
    return p


def _split_config_arg(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """``train a=b`` puts an override in the config slot: move it back."""
    if args.config is not None and "=" in args.config and not args.config.endswith((".yaml", ".yml")):
        return None, [args.config, *args.overrides]
    return args.config, list(args.overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    from deepspike.config import load_config
    from deepspike.train.trainer import Trainer

    config_path, overrides = _split_config_arg(args)
    if args.resume:
        run_config = Path(args.out) / "config.yaml"
        if config_path is None and run_config.is_file():
            config_path = str(run_config)
    if args.no_progress:
        overrides.append("train.progress=false")
    config = load_config(config_path, overrides)
    summary = Trainer(config, args.out, resume=args.resume).fit()
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from deepspike.train.reload import evaluate_run

    result = evaluate_run(args.run_dir, split=args.split)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from deepspike.analysis.costs import count_macs, count_parameters
    from deepspike.models import create_architecture, list_models

    print(f"{'model':<16} {'input':<12} {'params':>12} {'MACs':>14}  paper")
    for entry in list_models():
        arch = create_architecture(entry.name, num_classes=10)
        shape = "x".join(map(str, entry.default_input_shape))
        print(f"{entry.name:<16} {shape:<12} {count_parameters(arch):>12,} {count_macs(arch):>14,}  {entry.paper}")
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    import dataclasses

    from deepspike.methods import list_methods

    for cls in list_methods():
        print(f"{cls.name}: {cls.description}")
        for f in dataclasses.fields(cls.Options):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            print(f"    {f.name} = {default!r}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from deepspike.data import list_datasets

    for name in list_datasets():
        print(name)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from deepspike.demo import run_demo

    run_demo(args.out, list(args.overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
