"""``deepspike convert RUN_DIR --norm spike|max|percentile|channel|qcfs --timesteps N``: ANN run -> IF spiking net;
``deepspike convert RUN_DIR --to ttfs``: ReLU ANN run -> exact single-spike TTFS net (windowed ReL-PSP neurons)."""

from __future__ import annotations

import argparse
import os

import torch

from deepspike import api
from deepspike.core.atomic import strict_json
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole

NAME = "convert"
HELP = "convert a trained ANN run to an IF spiking net (QCFS, channel-, max-, percentile- or SPIKE-NORM) or, with " \
       "--to ttfs, exactly to a single-spike TTFS net"


NORM_HELP = " ".join((
    "spike, max, percentile, channel or qcfs, or several joined by commas (each converted into OUT/<norm>,",
    "plus OUT/comparison.md/.csv/.json/.png side by side). Thresholds: SPIKE-NORM (default), the ANN's max",
    "activation per layer, its percentile, the max per channel, or a QCFS ANN's trained thresholds (Bu et al.",
    "2022). Neuron defaults: qcfs and channel convert with direct input, subtraction reset, v_0 = th/2, membrane",
    "readout, threshold-valued spikes and signed neurons; spike, max and percentile with Poisson input, reset to",
    "zero, v_0 = 0, spike-count readout and 0/1 spikes (threshold-valued when the ANN has biases or batch-norm)",
))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished `deepspike train` run of method ann")
    p.add_argument("--to", choices=["rate", "ttfs"], default="rate", help="rate: IF neurons over T steps (default); "
                   "ttfs: one spike per neuron, windowed ReL-PSP neurons that reproduce the ReLU net exactly "
                   "(method ttfs_window; the rate options below do not apply)")
    p.add_argument("--margin", type=float, help="ttfs: each window is MARGIN x its layer's largest "
                   "activation on the calibration images (1.0)")
    p.add_argument("--alpha", type=float, help="ttfs: ramp slope of the neurons (1.0)")
    p.add_argument(
        "--norm",
        type=_norms,
        help=NORM_HELP,
    )
    most = f"at most {api.conversion.MAX_STEPS:,}"
    p.add_argument("--timesteps", type=int, help=f"simulated time steps T (default 2500, {most})")
    p.add_argument("--out", help="output run directory (default RUN_DIR/converted_<norm>)")
    p.add_argument("--calib-samples", type=int, help="training images for calibration (rate 256, ttfs 2048)")
    p.add_argument("--calib-timesteps", type=int, help=f"SPIKE-NORM steps per layer (2500, {most})")
    p.add_argument("--percentile", type=float, help="percentile for --norm percentile (99.99)")
    auto = " (default: follows --norm)"
    p.add_argument("--reset", choices=["zero", "subtract"], help="IF reset" + auto)
    p.add_argument("--readout", choices=["spike", "membrane"], help="output decoding" + auto)
    p.add_argument("--encoding", choices=["poisson", "direct"], help="input: signed Poisson spikes or the analog "
                   "image every step" + auto)
    p.add_argument("--initial-membrane", type=float, help="v_0 as a fraction of the threshold, in [0, 1)" + auto)
    p.add_argument("--spike-value", choices=["one", "threshold"], help="0/1 spikes (sengupta2019) or spikes that "
                   "carry their threshold (ANN units; needed for biases and per-channel thresholds)" + auto)
    p.add_argument(
        "--residual",
        choices=["unity", "balanced"],
        help="residual-stage thresholds with 0/1 spikes: 1 (paper, the default) or balanced like plain layers "
        "(spikes that carry their threshold balance every layer)",
    )
    p.add_argument("--signed", action=argparse.BooleanOptionalAction, help="signed IF neurons: a negative spike "
                   "takes back an early one (Li, Ma and Furber 2022; needs reset by subtraction)" + auto)
    p.add_argument("--limit", type=int, help="evaluate on the first N test images only")
    p.add_argument("--seed", type=int, help="seed of the calibration spike trains (0)")
    p.add_argument("--threads", type=int, help="torch CPU threads, at most the machine's CPUs (1 is much faster on a "
                   "busy machine)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


# Options of one kind of conversion: given with the other (--to), they would be ignored, so they are refused.
RATE_ONLY = ("norm", "timesteps", "calib_timesteps", "percentile", "reset", "readout", "encoding", "initial_membrane",
             "spike_value", "residual", "signed", "seed")
TTFS_ONLY = ("margin", "alpha")
# Options one norm reads (percentile, calib_timesteps, seed) stay None unless given: api.convert refuses them
# without their norm (api.conversion.NORM_ONLY) and fills their defaults.
DEFAULTS = {"margin": 1.0, "alpha": 1.0, "timesteps": 2500, "residual": "unity"}


def _resolve_defaults(args: argparse.Namespace) -> None:
    """A one-line ``ConfigError`` for an option of the other kind of conversion; then the defaults of the rest (but
    the options of one norm, which ``api.convert`` checks against ``--norm`` and fills)."""
    wrong = [key for key in (RATE_ONLY if args.to == "ttfs" else TTFS_ONLY) if getattr(args, key) is not None]
    if wrong:
        names = ", ".join("--" + key.replace("_", "-") for key in wrong)
        other = "rate" if args.to == "ttfs" else "ttfs"
        raise ConfigError(f"--to {args.to} does not use {names} (options of --to {other})")
    if args.norm is None:
        args.norm = ["spike"]
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.calib_samples is None:
        args.calib_samples = 2048 if args.to == "ttfs" else 256


def run(args: argparse.Namespace) -> int:
    _resolve_defaults(args)
    if args.threads is not None:
        cpus = os.cpu_count() or 1
        if not is_whole(args.threads, 1, cpus):  # 100,000 threads: a segmentation fault as their stacks ran out
            raise ConfigError(f"--threads must be in 1 .. {cpus} (this machine's CPUs), got {args.threads}")
        torch.set_num_threads(args.threads)
    log = None if args.quiet else (lambda s: print(s, flush=True))
    if args.to == "ttfs":
        summary = api.convert_to_ttfs(args.run_dir, args.out, calib_samples=args.calib_samples, margin=args.margin,
                                      alpha=args.alpha, limit=args.limit, log=log)
        print(strict_json(summary, indent=2))
        return 0
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
        encoding=args.encoding,
        initial_membrane=args.initial_membrane,
        spike_value=args.spike_value,
        signed=args.signed,
        limit=args.limit,
        seed=args.seed,
        log=log,
    )
    if "table" in summary:
        print(summary["table"], end="")
        return 0
    print(strict_json({k: v for k, v in summary.items() if k != "thresholds"}, indent=2))
    return 0


def _norms(text: str) -> list[str]:
    """``--norm a,b``: the listed norms, each a valid one (argparse prints a one-line usage error otherwise)."""
    norms = [n.strip() for n in text.split(",")]
    bad = [n for n in norms if n not in api.CONVERSION_NORMS]
    if bad:  # named: 'maxx' was answered "list each of spike, max, ... at most once", as if listed twice
        raise argparse.ArgumentTypeError(f"{text!r}: unknown norm {bad[0]!r}; valid: {', '.join(api.CONVERSION_NORMS)}")
    twice = [n for i, n in enumerate(norms) if n in norms[:i]]
    if twice:
        raise argparse.ArgumentTypeError(f"{text!r}: {twice[0]!r} is listed twice; list each norm once")
    return norms
