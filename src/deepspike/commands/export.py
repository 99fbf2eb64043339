"""``deepspike export RUN_DIR --nir model.nir``: write a trained run (rate-coded or TTFS) as a NIR graph;
``--onnx model.onnx``: a rate-coded run as an ONNX model (one time step, or the whole sequence), run back by
onnxruntime; ``--check``: run the exported graph in each installed third-party NIR tool and compare its output
spikes."""

from __future__ import annotations

import argparse

from deepspike import api
from deepspike.core.atomic import strict_json

NAME = "export"
HELP = ("export a run's checkpoint to NIR (rate-coded nets: Affine/Conv2d + IF/LIF; TTFS nets: Linear/Conv2d + "
        "fire-once CubaLIF with bias-spike inputs; windowed TTFS nets (ttfs_window): ReL-PSP CubaLIF layers with "
        "clock inputs for bias and ramp; needs deepspike[nir]) or, rate-coded nets and any tool's NIR file given in "
        "place of RUN_DIR, to ONNX (needs deepspike[nir,onnx])")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run folder, or a NIR file (any tool's) to write as ONNX with --onnx")
    p.add_argument("--nir", metavar="PATH", help="output file (HDF5), e.g. model.nir")
    p.add_argument("--onnx", metavar="PATH",
                   help="write an ONNX model (opset 17) that any ONNX runtime runs, of a rate-coded run (alone or "
                        "with --nir) or of the NIR file given in place of RUN_DIR; checked by onnxruntime against the "
                        "net (a NIR file: GraphSimulator) on sample spikes where it is installed")
    p.add_argument("--onnx-form", choices=("step", "sequence"), default=None,
                   help="--onnx: 'step' (default): one time step, the neurons' states as inputs and outputs, for "
                        "streaming; 'sequence': [T, B, ...] in, [T, B, ...] out, states from zero (an ONNX Scan)")
    p.add_argument("--onnx-reading", choices=("rate", "exact"), default=None,
                   help="a NIR file given in place of RUN_DIR (any tool's): 'rate' (default): forward Euler, inputs "
                        "held over each step (from_nir's reading, discrete-time nets); 'exact': inputs as areas, the "
                        "equations solved over dt (NIR's continuous time)")
    p.add_argument("--check", action="store_true",
                   help="rate-coded nets: run the graph in every installed NIR tool (snnTorch, Norse, Sinabs, "
                        "Rockpool, SpikingJelly, Spyx; `make test-nir` installs them) and, as ONNX, in onnxruntime, "
                        "and compare output spikes")
    p.add_argument("--steps", type=int, default=None, help="--check: time steps of the sample input (default "
                   f"1000, at most {api.reports.MAX_CHECK_STEPS:,})")
    p.add_argument("--target", choices=("speck", "xylo"),
                   help="check the net against a chip offline: speck (Sinabs' DYNAP-CNN mapping: IF conv nets; "
                        "per-layer cores and memory) or xylo (Rockpool's mapper: dense LIF nets, recurrent hidden "
                        "layers and synaptic-current LIF neurons too; int8 quantisation, the accuracy under the chip's "
                        "integer rules and the cost)")
    p.add_argument("--limit", type=int, default=None, help="--target xylo: test samples for the accuracy (default all)")
    p.add_argument(
        "--dt", type=float, help="rate-coded nets: seconds per time step written to NIR and ONNX (default 1e-4); a "
        "NIR file given in place of RUN_DIR: the step it is read with (default the file's own, else 1e-4)"
    )
    p.add_argument(
        "--fold-thresholds",
        action="store_true",
        help="rate-coded nets: divide weights by each layer's threshold and set thresholds to 1",
    )
    p.add_argument(
        "--round-delays",
        action="store_true",
        help="nets with learnable synaptic delays (Linear(delays=D), dsnn): export the net with each delay rounded "
        "to a whole step, as hardware runs it (`eval --round-delays` scores it): one Delay -> Linear branch per "
        "delay; --check then compares the tools with the rounded net",
    )
    p.add_argument(
        "--large", type=float,
        help="TTFS nets: tau_mem (and ReL-PSP's tau_syn) = LARGE * tau, finite stand-ins for 'no leak' (default 1e6)",
    )
    p.add_argument(
        "--t-window", type=float,
        help="TTFS nets: time (model units) within which every neuron provably fires at most once (default 100)",
    )


def run(args: argparse.Namespace) -> int:
    given = {"dt": args.dt, "large": args.large, "t_window": args.t_window}  # absent: the kind's defaults
    given["onnx_form"], given["onnx_reading"] = args.onnx_form, args.onnx_reading
    summary = api.export(args.run_dir, args.nir, check=args.check, steps=args.steps, target=args.target,
                         limit=args.limit, onnx=args.onnx, fold_thresholds=args.fold_thresholds,
                         round_delays=args.round_delays, **{k: v for k, v in given.items() if v is not None})
    check = summary.get("check", {})
    if not check.get("tools") and "message" in check and args.nir is None and args.target is None and not args.onnx:
        print(check["message"])  # --check alone with no tool installed: one line
        return 0
    print(strict_json(summary, indent=2, default=str))
    return 0
