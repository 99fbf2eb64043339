"""``deepspike analyze RUN_DIR --out REPORT``: activity, operations, energy, robustness, report, plots."""

from __future__ import annotations

import argparse
import math

from deepspike import api
from deepspike.core.errors import ConfigError

NAME = "analyze"
HELP = "analyse a run: spikes, sparsity, latency, synaptic ops, energy, quantization/noise sweeps, plots"


def _numbers(kind):
    """``a,b,...`` -> a tuple of ``kind`` (int or float); an entry that is none is a usage error naming it (it read
    "argument --bits: invalid parse value: '8.5'", after the parser function's own name)."""
    words = ("whole numbers, e.g. 8,4,2", "a whole number") if kind is int else ("numbers", "a number")

    def parse(text: str):
        values = []
        for v in filter(str.strip, text.split(",")):
            try:
                values.append(kind(v))
            except ValueError:
                raise argparse.ArgumentTypeError(f"{v.strip()!r} is not {words[1]}; give comma-separated "
                                                 f"{words[0]}") from None
        return tuple(values)

    return parse


def _check_finite(args: argparse.Namespace) -> None:
    """Sweep points must be finite numbers: a one-line ``ConfigError`` naming the first flag that is not."""
    for flag in ("snr", "deletion", "jitter"):
        bad = [v for v in getattr(args, flag) or () if not math.isfinite(v)]
        if bad:
            raise ConfigError(f"--{flag} {bad[0]} is not a finite number; give comma-separated numbers, e.g. 40,20")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (trained or converted)")
    p.add_argument("--out", help="report directory (default RUN_DIR/analysis)")
    p.add_argument("--limit", type=int, default=1000, help="test samples to use (default 1000; 0 = all)")
    p.add_argument("--bits", type=_numbers(int), default=(32, 8, 6, 4, 3, 2), help="PTQ bits (default 32,8,6,4,3,2)")
    p.add_argument(
        "--per-channel", action="store_true", help="quantize per output channel (default per layer)"
    )
    p.add_argument(
        "--snr", type=_numbers(float), default=(40, 30, 24, 20, 15, 10),
        help="weight-noise SNRs in dB (default 40,30,24,20,15,10)",
    )
    p.add_argument(
        "--deletion",
        type=_numbers(float),
        help="spike deletion probabilities (rate-coded nets; default 0,0.1,0.2,0.3,0.5)",
    )
    p.add_argument(
        "--jitter",
        type=_numbers(float),
        help="relative spike-time jitter (closed-form TTFS nets, not windowed ones; default 0,0.01,0.02,0.05,0.1)",
    )
    p.add_argument("--no-timesteps", action="store_true", help="skip the accuracy-vs-time-steps sweep")
    p.add_argument("--raster", type=int, metavar="N",
                   help="neurons per spiking layer in the spike raster of the first test sample (N of those that "
                        "fire, evenly spaced; rate-coded nets; default 32, 0 = none)")
    p.add_argument("--traces", type=int, metavar="N",
                   help="neurons per spiking layer whose membrane is traced over time on the first test sample "
                        "(about half that fire and half silent, evenly spaced; rate-coded nets; default 4, 0 = none)")
    p.add_argument("--preset", default="45nm_fp32", help="energy preset of the hardware mapping (default 45nm_fp32)")
    p.add_argument(
        "--add-preset",
        action="append",
        default=[],
        metavar="NAME:mac=PJ,ac=PJ,spike=PJ",
        help="add an energy preset of your own (repeatable; default none)",
    )
    p.add_argument("--pe-neurons", type=int, default=256, help="neurons per processing element (N, default 256)")
    p.add_argument("--pe-weights", type=int, default=65_536, help="weights per processing element (W, default 65536)")
    p.add_argument(
        "--qat",
        type=_numbers(int),
        default=(),
        help="also retrain with quantization, staged, e.g. 8,4,2 (writes OUT/qat/bits<k>; default none)",
    )
    p.add_argument("--qat-epochs", type=int, default=None, help="epochs per QAT stage (default 1; with --qat)")


def run(args: argparse.Namespace) -> int:
    _check_finite(args)
    options = api.AnalysisOptions(
        limit=args.limit or None,
        bits=args.bits,
        per_channel=args.per_channel,
        snrs=args.snr,
        deletions=args.deletion,
        jitters=args.jitter,
        timesteps=not args.no_timesteps,
        preset=args.preset,
        pe_neurons=args.pe_neurons,
        pe_weights=args.pe_weights,
        raster=args.raster,
        traces=args.traces,
    )
    result = api.analyze(args.run_dir, args.out, options, qat_bits=args.qat, qat_epochs=args.qat_epochs,
                         energy_presets=tuple(args.add_preset))
    act = result["activity"]
    print(f"accuracy {100 * result['accuracy']:.2f}% on {result['samples']} samples")
    if act:
        print(
            f"spikes per inference {act['spikes_per_sample']:,.1f}, sparsity {act['sparsity']:.3f}, "
            f"synaptic ops {act['synops_per_sample']:,.0f} "
            f"(ANN MACs {result['operations']['ann_macs_per_sample']:,})"
        )
    out = args.out or f"{args.run_dir}/analysis"
    print(f"report: {out}/report.md")
    return 0
