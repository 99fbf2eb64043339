"""Session 40: how often torch.compile's graph capture breaks in the closed-form TTFS methods' forward.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/results/session40/ttfs_graph_breaks.py

Each method's net as ``deepspike train`` builds it for ``model.name=mlp model.args.hidden=[16]`` on digits (64
inputs -> 16 -> 10: two layers), one forward of a batch of 4 ``torch.rand`` images under ``torch._dynamo.explain``.
Prints one line per method: its name, the network class and the graph-break count."""

import torch

from deepspike.config import load_config
from deepspike.training.run_setup import build_run


def main() -> None:
    for name in ("ttfs", "stdbp", "ttfs_window"):
        config = load_config(None, [f"method.name={name}", "data.name=digits", "model.name=mlp",
                                    "model.args.hidden=[16]"])
        model = build_run(config, torch.device("cpu")).model
        torch._dynamo.reset()
        explained = torch._dynamo.explain(model)(torch.rand(4, 64, generator=torch.Generator().manual_seed(0)))
        print(name, type(model).__name__, "graph breaks", explained.graph_break_count, flush=True)


if __name__ == "__main__":
    main()
