"""A spiking-transformer training step (Spikformer, or the Spike-driven Transformer with ``--model sdt``): deepspike
against SpikingJelly 2.0's own modules, the same net.

Net (both frameworks): Spikformer (Zhou et al., ICLR 2023) with ``dim`` 128, 2 encoder blocks of 4 heads, MLP ratio 4,
on 3x32x32 input fed directly at each of T = 4 steps, batch 16: the stem of four 3x3 conv-BN-LIF layers (16, 32, 64,
128 channels) with a 3x3 stride-2 max pool of the spikes after the last two, the position embedding, SSA and MLP
blocks, the token mean and a linear classifier; cross-entropy of the output averaged over T. LIF: tau 2 as a decay of
0.5 on an undivided input (SpikingJelly ``LIFNode(tau=2, decay_input=False)``, deepspike ``LIF(decay=0.5)``),
threshold 1 (0.5 after the attention product), hard reset, detached reset, sigmoid surrogate (alpha 4).

- deepspike: ``create_model("spikformer", method="stbp", ...)`` (``models.transformer``, ``layers.spiking_attention``).
- SpikingJelly: its ``SpikformerConv2dBNLIF``, ``SpikformerBlock`` and ``layer`` modules, assembled in the same order
  (its ``SpikformerPatchStem`` pools before the neurons; here the pool follows them, as in Spikformer's code and in
  ours), multi-step mode, torch backend (CuPy and Triton need a GPU).

``--model sdt``: the Spike-driven Transformer (Yao et al., NeurIPS 2023), the same sizes (``dim`` 128, 2 blocks of 4
heads, MLP ratio 4, stem pooling "0011") on the same input; SpikingJelly's ``model.SpikeDrivenTransformer`` with
its default ``LIFNode(tau=2)`` (``decay_input=True``: ``H = 0.5 V + 0.5 X``, threshold 1, ``Sigmoid(alpha=4)``,
detached reset), deepspike's ``sdt`` with the same neuron as ``LIF(decay=0.5)`` at threshold 2 and sigmoid alpha 2
(``configs/stbp_fmnist_sdt.yaml``; the same spikes and gradients, ``tests/conformance``). SpikingJelly's net has
more parameters: biases of convolutions that a batch-norm follows, which deepspike leaves out.

The parameter counts are printed and must agree (less those biases).
Timing: median of ``--steps`` steps after ``--warmup`` steps (forward,
loss, backward; no optimiser step), each framework in turn in one process. Peak memory: a fresh process per
framework, the peak RSS of two steps above the RSS before them (``bench_rate.print_child_peak``).

    OMP_NUM_THREADS=1 PYTHONPATH=src .bench-venv/bin/python benchmarks/bench_transformer.py --steps 5 [--model sdt]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rate import _median_ms, child_peak_mb, print_child_peak, setup_line, step_bench_args  # noqa: E402

T, B, SIDE, DIM, DEPTH, HEADS, K = 4, 16, 32, 128, 2, 4, 10


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(B, 3, SIDE, SIDE, generator=g), torch.randint(0, K, (B,), generator=g)


def _deepspike(model: str = "spikformer"):
    from deepspike.methods import create_model

    sdt = model == "sdt"  # SpikingJelly's default neuron (module docstring) for SDT, its decay_input=False for SSA
    args = {"dim": DIM, "depth": DEPTH, "heads": HEADS, **({"pooling": "0011"} if sdt else {})}
    net = create_model(model, method="stbp", num_classes=K, input_shape=(3, SIDE, SIDE), model_args=args,
                       timesteps=T, encoder="direct", readout="membrane", loss="ce", norm="bn", decay=0.5,
                       threshold=2.0 if sdt else 1.0, reset="zero", detach_reset=True, surrogate="sigmoid",
                       surrogate_args={"alpha": 2.0 if sdt else 4.0}).train()
    return net, lambda x: net(x)


def _spikingjelly_net() -> nn.Module:
    from spikingjelly.activation_based import functional, layer, surrogate
    from spikingjelly.activation_based.model.spikformer import SpikformerBlock, SpikformerConv2dBNLIF

    lif = {"decay_input": False, "detach_reset": True, "surrogate_function": surrogate.Sigmoid(alpha=4.0)}

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            stages, c_in = [], 3
            for i, c in enumerate((DIM // 8, DIM // 4, DIM // 2, DIM)):
                stages.append(SpikformerConv2dBNLIF(c_in, c, 3, 1, 1, pool=False, **lif))
                if i >= 2:
                    stages.append(layer.MaxPool2d(3, 2, 1, step_mode="m"))
                c_in = c
            self.stem = nn.Sequential(*stages)
            self.position = SpikformerConv2dBNLIF(DIM, DIM, 3, 1, 1, pool=False, **lif)
            self.blocks = nn.Sequential(*(SpikformerBlock(DIM, HEADS, 4.0, **lif) for _ in range(DEPTH)))
            self.head = nn.Linear(DIM, K)
            functional.set_step_mode(self, "m")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            functional.reset_net(self)
            s = self.stem(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))  # [T, B, C, H, W]
            s = s + self.position(s)
            s = self.blocks(s)
            return self.head(s.flatten(3).mean(-1)).mean(0)  # token mean, classifier, mean over T

    return Net().train()


def _spikingjelly():
    net = _spikingjelly_net()
    return net, lambda x: net(x)


def _spikingjelly_sdt():
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model.spike_driven_transformer import SpikeDrivenTransformer

    net = SpikeDrivenTransformer(T=T, in_channels=3, num_classes=K, embed_dims=DIM, num_heads=HEADS, depths=DEPTH,
                                 mlp_ratio=4.0, pooling_stat="0011", tau=2.0, detach_reset=True).train()

    def run(x):
        functional.reset_net(net)
        return net(x)

    return net, run


CASES = {
    "spikformer": {"deepspike": _deepspike, "spikingjelly": _spikingjelly},
    "sdt": {"deepspike": lambda: _deepspike("sdt"), "spikingjelly": _spikingjelly_sdt},
}
TITLES = {"spikformer": "Spikformer", "sdt": "Spike-driven Transformer"}


def _step(run, x, y) -> None:
    nn.functional.cross_entropy(run(x), y).backward()


def _memory_child(case: str) -> None:
    model, framework = case.split("/")
    (_, run), (x, y) = CASES[model][framework](), _inputs()
    print_child_peak(lambda: _step(run, x, y))


def main() -> None:
    args = step_bench_args(__doc__.splitlines()[0], _memory_child, tuple(CASES))
    if args is None:
        return
    print(setup_line(f"{TITLES[args.model]} dim {DIM}, {DEPTH} blocks, {HEADS} heads, 3x{SIDE}x{SIDE}, T={T}, "
                     f"batch {B}"))
    print("| framework | parameters | train step ms | / deepspike | peak MB above start |")
    print("|---|---|---|---|---|")
    base = None
    for name, build in CASES[args.model].items():
        try:
            net, run = build()
        except ImportError:
            print(f"| {name} | not installed | | | |")
            continue
        x, y = _inputs()
        ms = _median_ms(lambda run=run, x=x, y=y: _step(run, x, y), args.warmup, args.steps)
        base = base or ms
        mb = child_peak_mb(__file__, f"{args.model}/{name}")
        params = sum(p.numel() for p in net.parameters())
        print(f"| {name} | {params:,} | {ms:.0f} | {ms / base:.2f} | {'n/a' if mb is None else f'{mb:.0f}'} |")


if __name__ == "__main__":
    main()
