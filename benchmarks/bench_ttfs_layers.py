"""Time a training step (forward + backward) of closed-form TTFS layers against same-shape ANN layers.

Shapes: dense B=128, N=784 -> M=1000; conv B=32, 64 -> 64 channels, 32x32, 3x3, padding 1.
Run: ``.venv/bin/python benchmarks/bench_ttfs_layers.py [--repeats 5] [--backend auto]``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from deepspike.ttfs import spike_times, spike_times_conv2d


def fastest_time(fn, repeats):
    """The fastest of ``repeats`` timed calls of ``fn`` (seconds), after one warm-up call."""
    fn()  # warm-up (numba compile / cache load, allocator)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _step(make_out, params):
    def run():
        for p in params:
            p.grad = None
        make_out().sum().backward()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default="auto", choices=["auto", "native", "numba", "torch"])
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, backend {args.backend}")

    x = torch.rand(128, 784, requires_grad=True)
    w = (torch.rand(1000, 784) * 8 / 784).requires_grad_()
    b = torch.zeros(1000, requires_grad=True)
    ann = fastest_time(_step(lambda: F.relu(F.linear(x, w, b)), [x, w, b]), args.repeats)
    print(f"dense  ANN linear+relu          {ann * 1e3:8.1f} ms")
    for kernel in ("exp", "relpsp"):
        out = lambda k=kernel: spike_times(x, w, b, kernel=k, backend=args.backend).clamp(max=50)  # noqa: E731
        snn = fastest_time(_step(out, [x, w, b]), args.repeats)
        print(f"dense  TTFS {kernel:6s}              {snn * 1e3:8.1f} ms  ratio {snn / ann:5.2f}")

    xi = torch.rand(32, 64, 32, 32, requires_grad=True)
    wc = (torch.rand(64, 64, 3, 3) * 8 / 576).requires_grad_()
    bc = torch.zeros(64, requires_grad=True)
    ann = fastest_time(_step(lambda: F.relu(F.conv2d(xi, wc, bc, padding=1)), [xi, wc, bc]), args.repeats)
    print(f"conv   ANN conv2d+relu          {ann * 1e3:8.1f} ms")
    for kernel in ("exp", "relpsp"):

        def out(k=kernel):
            t = spike_times_conv2d(xi, wc, bc, padding=1, kernel=k, backend=args.backend)
            return t.clamp(max=50)

        snn = fastest_time(_step(out, [xi, wc, bc]), args.repeats)
        print(f"conv   TTFS {kernel:6s}              {snn * 1e3:8.1f} ms  ratio {snn / ann:5.2f}")


if __name__ == "__main__":
    main()
