"""One multi-step LIF layer, forward + backward, deepspike against SpikingJelly 2.0's implementations, on the
shape SpikingJelly publishes for its Triton kernel: input ``x [T, B, N] = [32, 64, 65536]`` in float16 (their
quoted 3.37 ms for the Triton kernel is on an RTX 4090; issue 26).

The same neuron in both: ``h_t = 0.5 v_{t-1} + x_t`` (deepspike ``decay=0.5``; SpikingJelly ``tau=2``,
``decay_input=False``), ``s_t = 1[h_t >= 1]``, hard reset to 0, sigmoid surrogate with alpha 4; ``v_0 = 0``
(float32 for SpikingJelly: its registered kernels need a float32 state). Measured per step: ``s = lif(x)``,
``s.backward(g)`` with ``x ~ U[0, 1)`` and ``g ~ N(0, 1)`` fixed, the median over ``--steps`` timed steps after
``--warmup``, each step ended by a device synchronisation. The firing rate ``mean(s)`` is printed per row: equal
rates on the same input say both ran the same neuron. The exit status is 1 when a deepspike case failed, else 0 (a
SpikingJelly case that cannot run here is a row saying why).

SpikingJelly 2.0 picks its CUDA implementation from ``SJ_LIF_CUDA_IMPLEMENTATION`` (``cuda``: its native C++
kernels, present only in a source build with ``SJ_BUILD_NATIVE_CUDA=1``; ``triton``; ``torch``), read when
spikingjelly is imported; it has no CuPy backend any more. So every case runs in its own process.

    python benchmarks/gpu/lif_vs_sj.py --device cuda [--dtypes fp16,fp32] [--T 32 --batch 64 --neurons 65536]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_rate import _median_ms  # noqa: E402 (the median-of-steps timer of the rate benchmark)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
SJ_CASES = {"spikingjelly-triton": "triton", "spikingjelly-cuda": "cuda", "spikingjelly-torch": "torch"}
CASES = ("deepspike", *SJ_CASES)
PUBLISHED = "SpikingJelly's published figure (issue 26): Triton LIF 3.37 ms, fp16 [32, 64, 65536], fwd + bwd, RTX 4090"


def synced(fn, device: torch.device):
    """``fn`` followed by a wait for the device (CUDA kernels run asynchronously)."""
    if device.type != "cuda":
        return fn
    return lambda: (fn(), torch.cuda.synchronize(device))


def _deepspike(device: torch.device):
    from deepspike.neurons import NeuronParams, neuron_multistep
    from deepspike.neurons.fused import fused_supported, uses_triton
    from deepspike.neurons.fused_low_precision import low_precision_supported

    params = NeuronParams(decay=0.5, threshold=1.0, reset="zero", surrogate="sigmoid", surrogate_args={"alpha": 4.0})

    def lif(x):
        return neuron_multistep(x, params)[0]

    def path(x):
        kernel = "fused Triton kernel" if uses_triton(x) else "fused numba kernel"
        if fused_supported(x, params):
            return kernel
        return kernel + ", float32 state" if low_precision_supported(x, params) else "reference loop"

    return lif, path


def _spikingjelly(device: torch.device):
    from spikingjelly.activation_based.functional import lif_multi_step
    from spikingjelly.activation_based.surrogate import Sigmoid

    surrogate = Sigmoid(alpha=4.0)

    def lif(x):
        v0 = torch.zeros(x.shape[1:], device=x.device, dtype=torch.float32)
        return lif_multi_step(x, v0, tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0,
                              surrogate_function=surrogate)[0]

    def path(x):
        if x.device.type != "cuda":
            return "CPU implementation"
        from spikingjelly._ops.lif import _selection

        return "implementation=" + _selection.diagnostics(x.device)["implementation"]

    return lif, path


def run_one(case: str, args) -> dict:
    """Time ``case`` in this process; returns its row."""
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    lif, path = _deepspike(device) if case == "deepspike" else _spikingjelly(device)
    torch.manual_seed(0)
    x = torch.rand(args.T, args.batch, args.neurons, device=device, dtype=dtype).requires_grad_()
    g = torch.randn(x.shape, device=device, dtype=dtype)
    rate = float(lif(x.detach()).float().mean())

    def step():
        x.grad = None
        lif(x).backward(g)

    ms = _median_ms(synced(step, device), args.warmup, args.steps)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {"case": case, "dtype": args.dtype, "ms": ms, "rate": rate, "path": path(x), "peak_mib": peak}


def _spawn(case: str, dtype: str, args) -> dict:
    env = dict(os.environ)
    if case in SJ_CASES:
        env["SJ_LIF_CUDA_IMPLEMENTATION"] = SJ_CASES[case]
    cmd = [sys.executable, __file__, "--one", case, "--dtype", dtype, "--device", args.device, "--T", str(args.T),
           "--batch", str(args.batch), "--neurons", str(args.neurons), "--steps", str(args.steps),
           "--warmup", str(args.warmup)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.case_timeout)
    except subprocess.TimeoutExpired:
        return {"case": case, "dtype": dtype, "error": f"timed out after {args.case_timeout} s"}
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines() or ["(no output)"]
        return {"case": case, "dtype": dtype, "error": lines[-1][:300]}
    return json.loads(res.stdout.strip().splitlines()[-1])


HEADER = "| case | dtype | median ms (fwd + bwd) | firing rate | peak MiB | path |\n|---|---|---|---|---|---|"


def table_row(r: dict) -> str:
    """One Markdown row (an error shown in the path column)."""
    if "error" in r:
        return f"| {r['case']} | {r['dtype']} | failed | | | {r['error']} |"
    return f"| {r['case']} | {r['dtype']} | {r['ms']:.3f} | {r['rate']:.4f} | {r['peak_mib']:.0f} | {r['path']} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="fp16,fp32")
    ap.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--T", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--neurons", type=int, default=65536)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--case-timeout", type=int, default=40)
    ap.add_argument("--one", choices=CASES, help="time this case in this process and print its row as JSON")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return
    print(f"x [T, B, N] = [{args.T}, {args.batch}, {args.neurons}] on {args.device}; {PUBLISHED}")
    print(HEADER)
    rows = []
    for dtype in args.dtypes.split(","):
        for case in args.cases.split(","):  # each row printed when done: a section time-out keeps those before it
            rows.append(_spawn(case, dtype, args))
            print(table_row(rows[-1]), flush=True)
    failed = [f"{r['case']} {r['dtype']}" for r in rows if "error" in r]
    print(f"{len(failed)} of {len(rows)} cases failed" + (f": {', '.join(failed)}" if failed else ""))
    if any(r["case"] == "deepspike" and "error" in r for r in rows):
        sys.exit(1)  # our own kernel failed: the check fails (a SpikingJelly row may fail: not built, not installed)


if __name__ == "__main__":
    main()
