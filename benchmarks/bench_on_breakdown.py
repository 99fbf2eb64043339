"""Where the Open Neuromorphic step's time goes (``bench_on.py``'s net, N = 4096, T = 500, B = 16): the forward GEMM
``x W^T`` over ``[T*B, N] x [N, N]``, the weight-gradient GEMM ``g^T x``, the same forward GEMM in bfloat16, and
deepspike's fused LIF forward + backward alone (on a clone of the Linear's output, the clone timed separately).
Medians of 3 after one warm-up. Run: ``python benchmarks/bench_on_breakdown.py [--neurons 4096]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from deepspike.neurons import LIF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rate import _median_ms as _median_of  # noqa: E402


def _median_ms(fn) -> float:
    """Median of 3 calls after one warm-up, in ms (``bench_rate``'s timer)."""
    return _median_of(fn, 1, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=4096)
    ap.add_argument("--timesteps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    t, b, n = a.timesteps, a.batch, a.neurons
    torch.manual_seed(0)
    x, w, g = torch.randn(t * b, n), torch.randn(n, n) * 0.02, torch.randn(t * b, n)
    lif = LIF(decay=0.9, threshold=1.0, reset="subtract", surrogate="fast_sigmoid", surrogate_args={"k": 2.0},
              inplace=True)
    h0 = (x @ w.t()).view(t, b, n)

    def lif_step():
        h = h0.clone().requires_grad_(True)
        lif(h).sum().backward()

    xb, wb = x.bfloat16(), w.bfloat16()
    print(f"N {n}, T {t}, B {b}, torch threads {torch.get_num_threads()}")
    print(f"forward GEMM float32         {_median_ms(lambda: x @ w.t()):8.0f} ms")
    print(f"weight-gradient GEMM float32 {_median_ms(lambda: g.t() @ x):8.0f} ms")
    print(f"forward GEMM bfloat16        {_median_ms(lambda: xb @ wb.t()):8.0f} ms")
    clone = _median_ms(lambda: h0.clone())
    print(f"fused LIF forward + backward {_median_ms(lif_step) - clone:8.0f} ms (clone {clone:.0f} ms subtracted)")


if __name__ == "__main__":
    main()
