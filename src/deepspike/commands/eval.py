"""``deepspike eval RUN_DIR``: reload a run's checkpoint and report its accuracy; ``deepspike eval MODEL.nir --data
NAME``: score a rate-coded NIR file (deepspike's or another tool's) on a data set."""

from __future__ import annotations

import argparse
import os

from deepspike import api
from deepspike.core.atomic import strict_json
from deepspike.core.errors import ConfigError

NAME = "eval"
HELP = "reload a run's checkpoint and report its test accuracy, or score a NIR file on a data set (--data)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory, or a NIR file (any tool's) to score with --data")
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="the split to score (default test; val: the part of train a run held out, "
                        "data.val_fraction)")
    p.add_argument(
        "--unquantised",
        action="store_true",
        help="score a QCFS ANN with clip(x, 0, lambda) in place of each QCFS: the accuracy its converted SNN tends to",
    )
    p.add_argument(
        "--round-delays",
        action="store_true",
        help="score a net with learnable synaptic delays (Linear(delays=D), dsnn) with each delay rounded to a whole "
        "step, as hardware runs it; the output says \"delays_rounded\": true (the checkpoint is not changed)",
    )


    p.add_argument("--data", help="a NIR file given in place of RUN_DIR: the data set to score it on")
    p.add_argument("--timesteps", type=int, help="a NIR file: time steps per sample (default: the file's)")
    p.add_argument("--encoder", help="a NIR file: the input coding, e.g. poisson or direct (default: the file's)")
    p.add_argument("--dt", type=float, help="a NIR file: the step it is read with (default: the file's, else 1e-4)")
    p.add_argument("--limit", type=int, help="a NIR file: score the first LIMIT samples only")


NIR_ONLY = ("data", "timesteps", "encoder", "dt", "limit")
RUN_ONLY = ("unquantised", "round_delays")


def run(args: argparse.Namespace) -> int:
    nir_file = os.path.isfile(args.run_dir)
    wrong = [k for k in (RUN_ONLY if nir_file else NIR_ONLY) if getattr(args, k) not in (None, False)]
    if wrong and not os.path.exists(args.run_dir):  # not a run directory either: say that, not which options
        raise ConfigError(f"{args.run_dir}: no such NIR file or run directory")
    if wrong:
        names = ", ".join("--" + k.replace("_", "-") for k in wrong)
        raise ConfigError(f"{names}: for {'a run directory' if nir_file else 'a NIR file given in place of RUN_DIR'}"
                          f", not {'a NIR file' if nir_file else 'a run directory'}")
    if nir_file:
        if args.data is None:
            raise ConfigError(f"{args.run_dir} is a file: to score a NIR file, name the data set with --data")
        result = api.evaluate_nir(args.run_dir, args.data, split=args.split, timesteps=args.timesteps,
                                  encoder=args.encoder, dt=args.dt, limit=args.limit)
    else:
        result = api.evaluate(args.run_dir, split=args.split, unquantised=args.unquantised,
                              round_delays=args.round_delays)
    print(strict_json(result, indent=2))
    return 0
