"""What learnable synaptic delays cost: one training step on the SHD shape of the delay paper, deepspike only.

Nets (stbp, LIF decay 0.9, threshold 1, reset to zero, arctan surrogate, membrane readout, cross-entropy): 140 input
channels (SHD's 700 pooled by 5) -> 256 -> 256 -> 20, as
- ``feed-forward``: ``dsnn`` with ``delays=1`` (plain linear layers);
- ``delays 25``: ``dsnn`` with ``delays=25`` (every synapse delayed by a learned 0-24 steps, ``layers.delays``);
- ``recurrent``: ``rsnn`` with the same two hidden layers recurrent.
Input: Bernoulli spikes of rate 0.05 on ``[B = 32, T = 100, 140]``. One step = forward, loss, backward (no optimiser
step). Timing and memory as ``bench_recurrent.py`` (median of ``--steps`` after ``--warmup``; peak RSS of two steps
above their start in a fresh process).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_delays.py --steps 10
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rate import _median_ms, child_peak_mb, print_child_peak, step_bench_args  # noqa: E402

B, T, F, H, K, D = 32, 100, 140, 256, 20, 25
NETS = {"feed-forward": ("dsnn", {"delays": 1}), "delays 25": ("dsnn", {"delays": D}), "recurrent": ("rsnn", {})}


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(B, T, F, generator=g) < 0.05).float(), torch.randint(0, K, (B,), generator=g)


def _net(name: str) -> nn.Module:
    from deepspike.methods import create_model

    model, args = NETS[name]
    return create_model(model, method="stbp", num_classes=K, input_shape=(F,), model_args={"hidden": [H, H], **args},
                        timesteps=T, encoder="frames", readout="membrane", loss="ce", decay=0.9, threshold=1.0,
                        reset="zero", surrogate="arctan").train()


def _step(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    nn.functional.cross_entropy(net(x), y).backward()


def peak_memory_mb(name: str) -> float | None:
    return child_peak_mb(__file__, name)


def _memory_child(name: str) -> None:
    net, (x, y) = _net(name), _inputs()
    print_child_peak(lambda: _step(net, x, y))


def main() -> None:
    args = step_bench_args(__doc__.splitlines()[0], _memory_child)
    if args is None:
        return
    print(f"B={B} T={T} {F}->{H}->{H}->{K}, D={D}; torch threads {torch.get_num_threads()}; torch {torch.__version__}, "
          f"python {platform.python_version()}")
    print("| net | train step ms | / feed-forward | peak MB above start |")
    print("|---|---:|---:|---:|")
    base = None
    for name in NETS:
        net, (x, y) = _net(name), _inputs()
        ms = _median_ms(lambda net=net, x=x, y=y: _step(net, x, y), args.warmup, args.steps)
        base = base or ms
        mb = peak_memory_mb(name)
        print(f"| {name} | {ms:.1f} | {ms / base:.2f} | {'n/a' if mb is None else f'{mb:.0f}'} |")


if __name__ == "__main__":
    main()
