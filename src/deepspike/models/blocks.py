"""Layer-spec building blocks shared by the model families."""

from __future__ import annotations

from collections.abc import Sequence

from deepspike.models.registry import scaled
from deepspike.models.spec import Dropout, Flatten, Layer, Linear


def classifier_head(num_classes: int, hidden: Sequence[int], width: float, dropout: float = 0.0) -> list[Layer]:
    """``Flatten``, then per hidden size ``Linear(scaled(h, width))`` (+ ``Dropout`` when ``dropout`` > 0),
    then the ``num_classes`` output layer (``act=False``: the method decides the readout)."""
    layers: list[Layer] = [Flatten()]
    for h in hidden:
        layers.append(Linear(scaled(int(h), width)))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Linear(num_classes, act=False))
    return layers
