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
    shapes = ["x".join(map(str, row["input_shape"])) for row in rows]
    name_w = max([len("model")] + [len(row["name"]) for row in rows])  # a long name must not push its row right
    shape_w = max([len("input")] + [len(s) for s in shapes])
    print(f"{'model':<{name_w}} {'input':<{shape_w}} {'weights':>12} {'MACs':>15}  paper")
    for row, shape in zip(rows, shapes):
        print(f"{row['name']:<{name_w}} {shape:<{shape_w}} {row['parameters']:>12,} {row['macs']:>15,}  {row['paper']}")
    return 0
