"""A recurrent spiking net on the Spiking Heidelberg Digits shape: deepspike against snnTorch (and Norse if installed).

Net (every framework the same): 700 input channels -> 256 recurrent LIF neurons (``I_t = W x_t + V s_{t-1}``, decay
0.9, threshold 1, reset to zero, arctan surrogate) -> 20 outputs, read out as the mean over T of the output layer's
input current (deepspike ``readout: membrane``); cross-entropy loss. Input: Bernoulli spikes of rate 0.05 on
``[B = 32, T = 100, 700]`` (SHD at 10 ms bins). One training step = forward, loss, backward (no optimiser step).

- deepspike: ``create_model("rsnn", method="stbp", ...)`` (``layers.recurrent.RecurrentSpiking``: with an IF/LIF
  neuron the T-step loop with its feedback matmul is one autograd node, ``neurons.recurrent_scan``; before session 28
  the layer called its neuron once per step under autograd).
- snnTorch: ``nn.Linear`` + ``RLeaky(all_to_all=True, reset_mechanism="zero", reset_delay=False)`` (the same
  neuron, tests/layers/test_recurrent.py; its feedback ``nn.Linear`` without the bias it comes with, as ours) +
  ``nn.Linear``, stepped in a Python loop as its tutorials do (tests/test_bench_recurrent.py: the same scores and
  gradients as deepspike's net).
- Norse (only where importable): ``LIFRecurrent`` (its own neuron model: current-based, dt-scaled; not the same
  dynamics, timed for reference).

Timing: median of ``--steps`` steps after ``--warmup`` steps, each framework in turn in one process (torch threads
as set by ``OMP_NUM_THREADS``). Peak memory: in a fresh process per framework, after one warm-up step, the peak RSS
of two steps (``VmHWM`` reset through ``/proc/self/clear_refs``) above the RSS before them, with
``MALLOC_MMAP_THRESHOLD_=65536`` so that freed blocks of 64 KiB or more go back at once (as ``bench_on.py``).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/bench_recurrent.py --steps 10
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rate import _median_ms, child_peak_mb, print_child_peak, setup_line, step_bench_args  # noqa: E402

B, T, F, H, K = 32, 100, 700, 256, 20
DECAY, THRESHOLD = 0.9, 1.0


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(B, T, F, generator=g) < 0.05).float()
    return x, torch.randint(0, K, (B,), generator=g)


def _deepspike():
    from deepspike.methods import create_model

    net = create_model("rsnn", method="stbp", num_classes=K, input_shape=(F,), model_args={"hidden": [H]},
                       timesteps=T, encoder="frames", readout="membrane", loss="ce", decay=DECAY,
                       threshold=THRESHOLD, reset="zero", surrogate="arctan").train()
    return net  # [B, T, F] -> [B, K]


class _SnnTorchNet(nn.Module):
    """snnTorch's net: ``fc_in``, ``RLeaky`` stepped over T, ``fc_out`` on every step's spikes, mean over T. The
    RLeaky's feedback ``nn.Linear`` has its bias removed: deepspike's has none (every layer here is bias-free)."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.fc_in, self.fc_out = nn.Linear(F, H, bias=False), nn.Linear(H, K, bias=False)
        self.lif = snn.RLeaky(beta=DECAY, threshold=THRESHOLD, linear_features=H, all_to_all=True,
                              reset_mechanism="zero", reset_delay=False)
        self.lif.recurrent.register_parameter("bias", None)

    def forward(self, x):
        spk, mem = self.lif.reset_mem()
        currents = self.fc_in(x)  # [B, T, H], all steps at once (as deepspike does)
        out = []
        for t in range(T):
            spk, mem = self.lif(currents[:, t], spk, mem)
            out.append(self.fc_out(spk))
        return torch.stack(out).mean(dim=0)


def _snntorch():
    return _SnnTorchNet()


def _norse():
    from norse.torch import LIFRecurrent

    rec, fc_out = LIFRecurrent(F, H), nn.Linear(H, K, bias=False)

    def run(x):
        spikes, _ = rec(x.transpose(0, 1))  # [T, B, H]
        return fc_out(spikes).mean(dim=0)

    return run


FRAMEWORKS = {"deepspike": _deepspike, "snntorch": _snntorch, "norse": _norse}


def _step(run, x, y) -> None:
    nn.functional.cross_entropy(run(x), y).backward()


def time_framework(name: str, steps: int, warmup: int) -> float | None:
    """Median ms of one training step, None when the framework is not installed."""
    try:
        run = FRAMEWORKS[name]()
    except ImportError:
        return None
    x, y = _inputs()
    return _median_ms(lambda: _step(run, x, y), warmup, steps)


def peak_memory_mb(name: str) -> float | None:
    """Peak MB of two steps of ``name`` above their start, in a fresh process (``--memory-child``)."""
    return child_peak_mb(__file__, name)


def _memory_child(name: str) -> None:
    run, (x, y) = FRAMEWORKS[name](), _inputs()
    print_child_peak(lambda: _step(run, x, y))


def main() -> None:
    args = step_bench_args(__doc__.splitlines()[0], _memory_child)
    if args is None:
        return
    print(setup_line(f"B={B} T={T} {F}->{H} recurrent->{K}"))
    print("| framework | train step ms | / deepspike | peak MB above start |")
    print("|---|---|---|---|")
    base = None
    for name in FRAMEWORKS:
        seconds = time_framework(name, args.steps, args.warmup)
        if seconds is None:
            print(f"| {name} | not installed | | |")
            continue
        base = base or seconds
        mb = peak_memory_mb(name)
        print(f"| {name} | {seconds:.1f} | {seconds / base:.2f} | {'n/a' if mb is None else f'{mb:.0f}'} |")


if __name__ == "__main__":
    main()
