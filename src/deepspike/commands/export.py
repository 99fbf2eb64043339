"""``deepspike export RUN_DIR --nir model.nir``: write a trained rate-coded run as a NIR graph."""

from __future__ import annotations

import argparse
import json

NAME = "export"
HELP = "export a run's checkpoint to NIR (rate-coded nets: Affine/Conv2d + IF/LIF; needs deepspike[nir])"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir")
    p.add_argument("--nir", required=True, metavar="PATH", help="output file (HDF5), e.g. model.nir")
    p.add_argument(
        "--dt", type=float, default=1e-4, help="seconds per time step written to NIR (default 1e-4)"
    )
    p.add_argument(
        "--fold-thresholds",
        action="store_true",
        help="divide weights by each layer's threshold and set thresholds to 1",
    )


def run(args: argparse.Namespace) -> int:
    from deepspike.export import export_run

    summary = export_run(args.run_dir, args.nir, dt=args.dt, fold_thresholds=args.fold_thresholds)
    print(json.dumps(summary, indent=2, default=str))
    return 0
