"""``deepspike convert RUN_DIR --norm spike|max|percentile --timesteps N``: ANN run -> IF spiking net."""

from __future__ import annotations

import argparse

import torch

from deepspike import api
from deepspike.core.atomic import strict_json
from deepspike.core.errors import ConfigError

NAME = "convert"
HELP = "convert a trained ANN run to an IF spiking net (sengupta2019: SPIKE-NORM or max-norm)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished `deepspike train` run of method ann")
    p.add_argument(
        "--norm",
        default="spike",
        choices=["spike", "max", "percentile"],
        help="threshold balancing: SPIKE-NORM (default), ANN max activation, or its percentile",
    )
    p.add_argument("--timesteps", type=int, default=2500, help="simulated time steps T (default 2500)")
    p.add_argument("--out", help="output run directory (default RUN_DIR/converted_<norm>)")
    p.add_argument("--calib-samples", type=int, default=256, help="training images for calibration (256)")
    p.add_argument("--calib-timesteps", type=int, default=2500, help="SPIKE-NORM steps per layer (2500)")
    p.add_argument("--percentile", type=float, default=99.99, help="percentile for --norm percentile")
    p.add_argument("--reset", default="zero", choices=["zero", "subtract"], help="IF reset (paper: zero)")
    p.add_argument("--readout", default="spike", choices=["spike", "membrane"], help="output decoding")
    p.add_argument(
        "--residual",
        default="unity",
        choices=["unity", "balanced"],
        help="residual-stage thresholds: 1 (paper) or balanced like plain layers",
    )
    p.add_argument("--limit", type=int, help="evaluate on the first N test images only")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration spike trains")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is much faster on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    for key in ("timesteps", "calib_samples", "calib_timesteps"):
        if getattr(args, key) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    summary = api.convert(
        args.run_dir,
        args.out,
        norm=args.norm,
        timesteps=args.timesteps,
        calib_samples=args.calib_samples,
        calib_timesteps=args.calib_timesteps,
        percentile=args.percentile,
        reset=args.reset,
        readout=args.readout,
        residual=args.residual,
        limit=args.limit,
        seed=args.seed,
        log=None if args.quiet else (lambda s: print(s, flush=True)),
    )
    print(strict_json({k: v for k, v in summary.items() if k != "thresholds"}, indent=2))
    return 0
