"""``deepspike train CONFIG.yaml key=value ... --out DIR [--resume]``."""

from __future__ import annotations

import argparse
import json

NAME = "train"
HELP = "train a recipe: deepspike train CONFIG.yaml key=value ... --out DIR"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML recipe (defaults when omitted)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=3")
    p.add_argument("--out", required=True, help="run directory (config, metrics, checkpoint, summary)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def split_config_arg(config: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """``train a=b`` lands an override in the config slot: move it back."""
    if config is not None and "=" in config and not config.endswith((".yaml", ".yml")):
        return None, [config, *overrides]
    return config, list(overrides)


def run(args: argparse.Namespace) -> int:
    from deepspike.config import load_config
    from deepspike.train.runs import RunDir
    from deepspike.train.trainer import Trainer

    config_path, overrides = split_config_arg(args.config, args.overrides)
    out = RunDir(args.out)
    if args.resume and config_path is None and out.is_run_dir():
        config_path = str(out.config_path)
    if args.no_progress:
        overrides.append("train.progress=false")
    config = load_config(config_path, overrides)
    trainer = Trainer(config, args.out, resume=args.resume)
    summary = trainer.fit()  # leaves the process group; an exception ends this rank, torchrun then stops the others
    if trainer.dist.is_main:
        print(json.dumps(summary, indent=2))
    return 0
