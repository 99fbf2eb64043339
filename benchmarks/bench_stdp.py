"""Time one STDP weight update over a whole spike sequence: deepspike's trace rule against SpikingJelly's.

For each layer (below) and random spikes ``pre [T, B, ...]``, ``post [T, B, ...]`` (density 0.2), the same update:
deepspike's ``layers.stdp_rule.stdp_correlations`` + ``apply_stdp`` (traces for all T, then one weight-gradient
call per correlation) and SpikingJelly 2.0's ``functional.learning.stdp_*_step`` stepped over T (what its
``STDPLearner.step`` runs on its monitors' records; the monitors themselves are left out, their cost is not ours to
count), with soft-bound factors ``f_post(W) = eta (w_max - W)``, ``f_pre(W) = eta (W - w_min)``. Both in float32 on
one thread; interleaved rounds, medians. The two updates agree to float32 rounding (``max |diff|`` is printed);
``tests/conformance/test_stdp_against_spikingjelly.py`` checks them in float64.

    OMP_NUM_THREADS=1 .bench-venv/bin/python benchmarks/bench_stdp.py --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from spikingjelly.activation_based.functional import learning
from torch import nn

from deepspike.layers.stdp_rule import StdpRule, apply_stdp, stdp_correlations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_checks import whole  # noqa: E402

RULE = StdpRule(decay_pre=0.5, decay_post=0.5, rate_plus=1e-3, rate_minus=1e-3, bounds="soft", w_min=-1.0,
                w_max=1.0)
# (name, layer, one sample's input shape, T, B)
CASES = [
    ("Conv2d(1->32, 3x3, pad 1) on 28x28, T=4, B=64", lambda: nn.Conv2d(1, 32, 3, padding=1, bias=False),
     (1, 28, 28), 4, 64),
    ("Conv2d(32->64, 3x3, pad 1) on 16x16, T=8, B=32", lambda: nn.Conv2d(32, 64, 3, padding=1, bias=False),
     (32, 16, 16), 8, 32),
    ("Linear(784->400), T=8, B=64", lambda: nn.Linear(784, 400, bias=False), (784,), 8, 64),
]


def ours(layer: nn.Module, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    w = layer.weight.detach().clone()
    apply_stdp(w, *stdp_correlations(pre, post, layer, RULE), 1.0, RULE)  # the batch sum, as SpikingJelly's
    return w


def theirs(layer: nn.Module, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    w = layer.weight.detach()
    if isinstance(layer, nn.Linear):
        step, kwargs = learning.stdp_linear_step, {}
    else:
        step, kwargs = learning.stdp_conv2d_step, {"stride": layer.stride}
        pre = F.pad(pre, [p for p in reversed(layer.padding) for _ in range(2)])
    traces = (torch.zeros_like(pre[0]), torch.zeros_like(post[0]))
    total = torch.zeros_like(w)
    tau = 1 / (1 - RULE.decay_pre)
    for t in range(pre.shape[0]):
        delta, traces = step(pre[t], post[t], traces, w, tau_pre=tau, tau_post=tau,
                             f_pre=lambda v: RULE.rate_minus * (v - RULE.w_min),
                             f_post=lambda v: RULE.rate_plus * (RULE.w_max - v), **kwargs)
        total += delta
    return (w + total).clamp(RULE.w_min, RULE.w_max)


def _seconds(fn, *args) -> tuple[float, torch.Tensor]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=whole(1), default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, "
          f"{args.rounds} rounds after 1 warm-up\n")
    print("| layer | deepspike ms | SpikingJelly ms | SpikingJelly / deepspike | max abs diff |")
    print("|---|---:|---:|---:|---:|")
    for name, make, shape, steps, batch in CASES:
        torch.manual_seed(0)
        layer = make()
        pre = (torch.rand(steps, batch, *shape) < 0.2).float()
        post = (torch.rand(steps, batch, *layer(pre[0]).shape[1:]) < 0.2).float()
        times = {"ours": [], "theirs": []}
        outs = {}
        for r in range(args.rounds + 1):
            for who, fn in (("ours", ours), ("theirs", theirs)):
                seconds, outs[who] = _seconds(fn, layer, pre, post)
                if r:
                    times[who].append(seconds)
        a, b = statistics.median(times["ours"]) * 1e3, statistics.median(times["theirs"]) * 1e3
        diff = (outs["ours"] - outs["theirs"]).abs().max().item()
        print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.1f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
