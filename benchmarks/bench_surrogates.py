"""Forward + backward time of a fused neuron layer for each surrogate gradient, on this CPU.

Two layers on ``x [T=4, B=16, 64, 32, 32]`` (4.2 M neurons, a third stem layer of the Spike-driven Transformer at
32x32): the fused LIF (``LIF(decay=0.5, threshold=1, detach_reset=True)``, kernels of ``neurons.fused``) and a
training-mode batch-norm followed by that LIF (one ``_BatchNormNeuron`` node, ``layers.batchnorm_neuron``). The
surrogate changes only the backward pass. Surrogates are timed in interleaved rounds (drifting load hits each alike);
the median over rounds is reported, with the ratio to the rectangular surrogate.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_surrogates.py --rounds 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from deepspike.layers.spiking_sequential import SpikingSequential
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons import LIF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_checks import whole  # noqa: E402

SHAPE = (4, 16, 64, 32, 32)
SURROGATES = {"rectangular": {}, "sigmoid": {"alpha": 4.0}, "fast_sigmoid": {}, "arctan": {"alpha": 2.0},
              "erf": {}, "triangular": {}}


def _layers(surrogate: str, args: dict) -> dict[str, nn.Module]:
    def lif() -> LIF:
        return LIF(decay=0.5, threshold=1.0, surrogate=surrogate, surrogate_args=args, inplace=True,
                   detach_reset=True)

    return {"LIF": SpikingSequential(lif()),
            "BN + LIF": SpikingSequential(TimeDistributed(nn.BatchNorm2d(SHAPE[2])), lif())}


def _seconds(layer: nn.Module, x0: torch.Tensor) -> tuple[float, float]:
    x = x0.clone().requires_grad_()
    start = time.perf_counter()
    y = layer(x)
    middle = time.perf_counter()
    y.backward(torch.ones_like(y))
    return middle - start, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=whole(1), default=15)
    args = parser.parse_args()
    x0 = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(0))
    layers = {name: _layers(name, options) for name, options in SURROGATES.items()}
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_ in range(args.rounds + 2):  # two warm-up rounds (numba compiles each surrogate's kernels once)
        for name, pair in layers.items():
            for kind, layer in pair.items():
                sample = _seconds(layer, x0)
                if round_ >= 2:
                    times.setdefault((kind, name), []).append(sample)
    print(f"x {list(SHAPE)}, torch threads {torch.get_num_threads()}, {args.rounds} rounds, medians in ms")
    print("| layer | surrogate | forward | backward | backward / rectangular's |")
    print("|---|---|---|---|---|")
    for kind in ("LIF", "BN + LIF"):
        base = statistics.median(b for _, b in times[(kind, "rectangular")])
        for name in SURROGATES:
            fwd = statistics.median(f for f, _ in times[(kind, name)]) * 1e3
            bwd = statistics.median(b for _, b in times[(kind, name)])
            print(f"| {kind} | {name} | {fwd:.1f} | {bwd * 1e3:.1f} | {bwd / base:.2f} |")


if __name__ == "__main__":
    main()
