"""A closed-form TTFS conv layer, forward + backward, on the GPU (Triton backend) against the CPU backends
(native C, numba), at ``benchmarks/bench_ttfs_layers.py``'s conv shape: input times ``[B, C, H, W] =
[32, 64, 32, 32]``, weights ``[64, 64, 3, 3]``, padding 1, kernels exp and relpsp.

Measured per step: ``spike_times_conv2d(t, w, b).clamp(max=50).sum().backward()`` (``bench_ttfs_layers._step``),
the median over ``--steps`` (GPU) or ``--cpu-steps`` timed steps after one warm-up (compilation), each ended
by a device synchronisation; ``ratio`` is the time over conv2d + ReLU on the same device. Before timing, the
GPU's spike times are compared with the first CPU backend's on the same input: the same silent (infinite)
outputs, and the largest difference of the finite times.

    python benchmarks/gpu/ttfs_conv.py [--gpu-device cuda] [--cpu-backends native,numba] [--batch 32 ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rate import _median_ms  # noqa: E402 (the median-of-steps timer)
from bench_ttfs_layers import _step  # noqa: E402 (the training step of the TTFS layer benchmark)
from lif_vs_sj import synced  # noqa: E402 (the device-synchronised call)

from deepspike.ttfs import spike_times_conv2d  # noqa: E402


def _inputs(args, device: torch.device):
    torch.manual_seed(0)
    fan_in = args.channels * 9
    x = torch.rand(args.batch, args.channels, args.size, args.size).to(device).requires_grad_()
    w = (torch.rand(args.channels, args.channels, 3, 3) * 8 / fan_in).to(device).requires_grad_()
    b = torch.zeros(args.channels, device=device, requires_grad=True)
    return x, w, b


def _ttfs(backend: str, kernel: str, x, w, b):
    return lambda: spike_times_conv2d(x, w, b, padding=1, kernel=kernel, backend=backend).clamp(max=50)


def _time(make_out, params, device, steps: int) -> float:
    return _median_ms(synced(_step(make_out, params), device), 1, steps)


def _agreement(gpu_backend, gpu, cpu_backend, kernel, args) -> str:
    """Same silent outputs, and the largest difference of the finite times, GPU against CPU."""
    got = spike_times_conv2d(*[p.detach() for p in _inputs(args, gpu)], padding=1, kernel=kernel,
                             backend=gpu_backend).cpu()
    ref = spike_times_conv2d(*[p.detach() for p in _inputs(args, torch.device("cpu"))], padding=1, kernel=kernel,
                             backend=cpu_backend)
    same = torch.equal(torch.isfinite(got), torch.isfinite(ref))
    fin = torch.isfinite(ref) & torch.isfinite(got)
    diff = float((got[fin] - ref[fin]).abs().max()) if fin.any() else 0.0
    return f"{gpu_backend} vs {cpu_backend}: same silent outputs {same}, max |dt| {diff:.2e}, " \
           f"{float(fin.double().mean()):.2f} of outputs fire"


def _rows(args, device: torch.device, backends: list[str], steps: int) -> None:
    """Print the ANN row and one row per backend and kernel, each when done (a time-out keeps those before)."""
    x, w, b = _inputs(args, device)
    ann = _time(lambda: F.relu(F.conv2d(x, w, b, padding=1)), [x, w, b], device, steps)
    print(f"| {device.type} | ANN conv2d + ReLU | | {ann:.2f} | 1.00 |", flush=True)
    for backend in backends:
        for kernel in ("exp", "relpsp"):
            try:
                ms = _time(_ttfs(backend, kernel, x, w, b), [x, w, b], device, steps)
                print(f"| {device.type} | TTFS {backend} | {kernel} | {ms:.2f} | {ms / ann:.2f} |", flush=True)
            except Exception as e:  # a backend that cannot run here (no compiler, no numba): shown, not hidden
                print(f"| {device.type} | TTFS {backend} | {kernel} | failed | {type(e).__name__}: {e} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu-device", default="cuda", help="device of the Triton backend ('cpu' in the dry run)")
    ap.add_argument("--cpu-backends", default="native,numba")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10, help="timed steps on the GPU")
    ap.add_argument("--cpu-steps", type=int, default=2, help="timed steps of each CPU backend")
    args = ap.parse_args()
    gpu, cpu_backends = torch.device(args.gpu_device), args.cpu_backends.split(",")
    print(f"t [B, C, H, W] = [{args.batch}, {args.channels}, {args.size}, {args.size}], 3x3, padding 1; "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for kernel in ("exp", "relpsp"):
        try:
            print(_agreement("triton", gpu, cpu_backends[0], kernel, args))
        except Exception as e:
            print(f"agreement {kernel}: failed: {type(e).__name__}: {e}")
    print("| device | layer | kernel | median ms (fwd + bwd) | ratio to ANN |\n|---|---|---|---|---|")
    _rows(args, gpu, ["triton"], args.steps)
    _rows(args, torch.device("cpu"), cpu_backends, args.cpu_steps)


if __name__ == "__main__":
    main()
