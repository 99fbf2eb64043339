"""``deepspike train CONFIG.yaml key=value ... --out DIR [--resume]``."""

from __future__ import annotations

import argparse

from deepspike import api
from deepspike.core.atomic import strict_json

NAME = "train"
HELP = "train a recipe: deepspike train CONFIG.yaml key=value ... --out DIR"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML recipe (defaults when omitted)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=3")
    p.add_argument("--out", required=True,
                   help="run directory (config, metrics, checkpoint, summary; metrics.csv, tensorboard/ and "
                        "reproduce.json too); must not hold those files unless --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint (overrides other than train.epochs and "
                        "how it runs, e.g. train.progress, data.num_workers, are refused)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def split_config_arg(config: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """``train a=b`` lands an override in the config slot: move it back."""
    if config is not None and "=" in config and not config.endswith((".yaml", ".yml")):
        return None, [config, *overrides]
    return config, list(overrides)


def run(args: argparse.Namespace) -> int:
    config_path, overrides = split_config_arg(args.config, args.overrides)
    if args.no_progress:
        overrides.append("train.progress=false")
    summary = api.train(config_path, args.out, overrides, resume=args.resume)
    if summary is not None:
        print(strict_json(summary, indent=2))
    return 0
