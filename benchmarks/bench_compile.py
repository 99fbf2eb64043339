"""Eager vs ``torch.compile`` (default mode) step time of one training step of a small stbp conv net on the CPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_compile.py [--neuron lif] [--batch 32] [--steps 4] [--runs 15]

One step = forward, cross-entropy on the mean output, backward, SGD update; scnn_digits (8x8 inputs) built by the
stbp method. Prints the median (and min) over ``--runs`` steps after 3 warm-up steps for each mode, and the
compile time (the first compiled step). Spikes and gradients of the two modes: tests/neurons/test_compile.py.
"""

import argparse
import statistics
import time

import torch

from deepspike.methods import get_method
from deepspike.models.registry import create_architecture


def step_times(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, runs: int) -> tuple[float, list[float]]:
    """(seconds of the first step, seconds of each of ``runs`` steps after 3 warm-up steps)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    times = []
    for _ in range(runs + 4):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return times[0], times[4:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--neuron", default="lif")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    arch = create_architecture("scnn_digits", 10, (1, 8, 8), a.width)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(a.batch, 1, 8, 8, generator=g), torch.randint(0, 10, (a.batch,), generator=g)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, scnn_digits width {a.width}, "
          f"neuron {a.neuron}, T={a.steps}, batch {a.batch}")
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = get_method("stbp", {"timesteps": a.steps, "neuron": a.neuron}).build(arch)
        first, times = step_times(model if mode == "eager" else torch.compile(model), x, y, a.runs)
        print(f"{mode:9s} median {statistics.median(times) * 1e3:8.2f} ms  min {min(times) * 1e3:8.2f} ms  "
              f"first step {first:6.2f} s")


if __name__ == "__main__":
    main()
