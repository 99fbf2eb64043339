"""Training memory and step time against T of a recurrent adaptive-threshold net: BPTT against e-prop.

The net of Bellec et al.'s e-prop (Nat. Commun. 2020) on the Spiking Heidelberg Digits shape: 700 input channels ->
256 recurrent adaptive-threshold LIF neurons (``method.neuron=alif``: decay 0.9, threshold 1, subtract reset,
adaptation decay 0.9 and scale 0.2, fast-sigmoid surrogate) -> 20 outputs read out as the classifier's output
current (``readout: membrane``); batch 32 of Bernoulli spikes of rate 0.05; one training step = zero_grad, forward,
cross-entropy, backward, SGD step. Cases:

* ``deepspike-bptt``: backpropagation through time (the adaptive neuron's step loop under autograd);
* ``deepspike-eprop``: ``train.temporal_grad=eprop``, each step's loss backpropagated at once with the eligibility
  traces (``training.eprop``: per-synapse adaptation eligibility of both weights onto the 256 neurons);
* ``deepspike-eprop-random``: the same with ``train.eprop_feedback=random``.

Columns and method as ``bench_memory_t.py`` (peak tensors from torch.profiler's allocation events, peak RSS of a
fresh process per case above its RSS after the weights and batch are built, median step time).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_eprop.py [--timesteps 25,50,100,200] [--markdown]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_memory_t  # noqa: E402

B, F, H, K = 32, 700, 256, 20
CASES = ("deepspike-bptt", "deepspike-eprop", "deepspike-eprop-random")
GROWTH = {"deepspike-eprop": (0.0, "flat in T"), "deepspike-eprop-random": (0.0, "flat in T")}


def _net(timesteps: int, case: str):
    """The module docstring's net set up for ``case``."""
    from deepspike.methods import create_model
    from deepspike.training.temporal_grad import prepare_temporal_grad

    net = create_model("rsnn", method="stbp", num_classes=K, input_shape=(F,), model_args={"hidden": [H]},
                       timesteps=timesteps, encoder="frames", readout="membrane", loss="ce", decay=0.9,
                       threshold=1.0, reset="subtract", surrogate="fast_sigmoid", neuron="alif").train()
    mode = "bptt" if case == "deepspike-bptt" else "eprop"
    prepare_temporal_grad(net, mode, None, "stbp", "random" if case.endswith("random") else None, seed=0)
    return net, mode


def _train_step(case: str, timesteps: int, batch: int = B):
    """One training step of ``case`` (module docstring) on a fixed batch."""
    import torch
    import torch.nn.functional as F

    from deepspike.training.temporal_grad import online_step

    torch.manual_seed(0)
    net, mode = _net(timesteps, case)
    x = (torch.rand(batch, timesteps, 700) < 0.05).float()
    y = torch.randint(0, K, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        if mode == "eprop":
            online_step(net, net, bench_memory_t._CrossEntropy(), x, y, mode)
        else:
            F.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def main() -> None:
    bench_memory_t.run_cli(__doc__.splitlines()[0], CASES, "25,50,100,200", _train_step, GROWTH, __file__)


if __name__ == "__main__":
    main()
