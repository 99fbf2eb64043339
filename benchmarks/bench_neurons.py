"""Step times of the neuron choices of issue 22 (lif / plif / plif + learnt threshold / psn), on this CPU.

Two tables: (1) one neuron layer, forward + backward, on ``x [T=8, B=32, 64, 16, 16]``; (2) one training step
(forward, MSE-to-one-hot loss, backward, Adam step) of ``stbp_mnist`` (32C3-AP2-32C3-AP2-128-10, 28x28 input,
direct encoding) at T = 8, batch 32, built by method ``stbp`` with each ``method.neuron`` choice. Variants are
timed in interleaved rounds (so drifting load on shared cores hits each alike); the median over rounds is
reported, with the ratio to the plain LIF.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_neurons.py --rounds 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons import LIF, NeuronParams
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.psn import PSN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_checks import whole  # noqa: E402

NEURON_SHAPE = (8, 32, 64, 16, 16)
NET_OPTIONS = {
    "lif": {},
    "plif (per layer)": {"neuron": "plif"},
    "plif + learnt threshold (per channel)": {"neuron": "plif", "learn_threshold": True, "neuron_params": "channel"},
    "lif + learnt threshold (per channel)": {"learn_threshold": True, "neuron_params": "channel"},
    "psn": {"neuron": "psn"},
}


def _neuron_steps() -> dict:
    """One forward + backward of each neuron layer on a fresh copy of the same input."""
    x0 = torch.randn(*NEURON_SHAPE, generator=torch.Generator().manual_seed(0)) * 0.8
    p = NeuronParams(decay=0.25, threshold=0.5)
    layers = {
        "lif (fused, fixed parameters)": LIF(decay=0.25, threshold=0.5),
        "plif (per layer)": LearnableLIF(p),
        "plif + learnt threshold (per channel)": LearnableLIF(p, channels=64, learn_threshold=True),
        "psn": PSN(8, decay=0.25, threshold=0.5),
    }

    def run(m):
        def step():
            x = x0.clone().requires_grad_()
            m(x).sum().backward()
        return step

    return {name: run(m) for name, m in layers.items()}


def _train_steps() -> dict:
    arch = create_architecture("stbp_mnist", num_classes=10)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g)

    def run(options):
        torch.manual_seed(0)
        method = get_method("stbp", {"timesteps": 8, **options})
        net = method.build(arch)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            method.loss(net(x), y).backward()
            opt.step()
        return step

    return {name: run(o) for name, o in NET_OPTIONS.items()}


def _time(steps: dict, rounds: int) -> dict:
    for step in steps.values():  # warm-up (numba compile, allocator)
        step()
        step()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _table(title: str, medians: dict) -> str:
    base = next(iter(medians.values()))
    rows = [f"| {name} | {t * 1e3:.1f} | {t / base:.2f} |" for name, t in medians.items()]
    return "\n".join([f"**{title}**", "", "| variant | median step (ms) | vs lif |", "|---|---:|---:|", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=whole(1), default=15)
    parser.add_argument("--only", choices=("neuron", "train"), default=None)
    args = parser.parse_args()
    if args.only in (None, "neuron"):
        print(_table(f"One neuron layer, forward + backward, x {list(NEURON_SHAPE)}", _time(_neuron_steps(),
                                                                                           args.rounds)))
        print()
    if args.only in (None, "train"):
        print(_table("Training step of stbp_mnist, T = 8, batch 32", _time(_train_steps(), args.rounds)))


if __name__ == "__main__":
    main()
