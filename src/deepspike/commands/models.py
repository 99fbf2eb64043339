"""``deepspike models``: every registered model with its weight and MAC counts (``models.costs``: the synaptic
layers' weights and biases, and the learnable delays of delayed synapses; batch-norm's scale and shift and neuron
parameters are not counted)."""

from __future__ import annotations

import argparse

from deepspike import api

NAME = "models"
HELP = ("list registered models with their synaptic weight counts (conv/linear/attention weights and biases, synaptic "
        "delays; batch-norm and neuron parameters not counted) and MACs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classes", type=int, default=10, help="number of classes to size the head (default 10, "
                   f"2 to {api.catalog.MAX_SIZE_ARG})")


def run(args: argparse.Namespace) -> int:
    rows = api.model_table(args.classes)  # before the header: a bad --classes is the only line printed
    print(f"{'model':<18} {'input':<12} {'weights':>12} {'MACs':>15}  paper")
    for row in rows:
        shape = "x".join(map(str, row["input_shape"]))
        print(f"{row['name']:<18} {shape:<12} {row['parameters']:>12,} {row['macs']:>15,}  {row['paper']}")
    return 0
