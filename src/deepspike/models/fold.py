"""Batch-norm folding on the spec side: a ``norm=True`` conv/linear becomes the same layer with a bias.

At inference a batch-norm after a weighted layer is an affine map per channel, so ``BN(W x + b)`` is one
layer ``W' x + b'`` (the weights are folded by ``methods.weight_transfer.folded_weights``). A network built from
the folded spec has the same conv/linear layers in the same order, now with biases and without the norms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from deepspike.models.layer_specs import Attention, Concat, Conv, Layer, Linear, Residual
from deepspike.models.spec import Architecture


def fold_batch_norms(arch: Architecture) -> Architecture:
    """``arch`` with every ``Conv``/``Linear(norm=True)`` replaced by ``norm=False, bias=True`` (at any depth)."""
    return dataclasses.replace(arch, layers=map_weighted(arch.layers, _folded))


def has_batch_norm(arch: Architecture) -> bool:
    """True when any conv/linear of ``arch`` has ``norm=True``, or ``arch`` has attention (its projections do)."""
    return any(getattr(visit.layer, "norm", False) or isinstance(visit.layer, Attention) for visit in arch.visits())


def _folded(layer: Conv | Linear) -> Conv | Linear:
    return dataclasses.replace(layer, norm=False, bias=True) if layer.norm else layer


def map_weighted(layers: tuple[Layer, ...], change: Callable[[Conv | Linear], Layer]) -> tuple[Layer, ...]:
    """``layers`` with every ``Conv`` and ``Linear`` replaced by ``change(layer)``, at any depth (inside ``Residual``
    bodies and shortcuts and ``Concat`` branches); the other layers as they are."""
    def one(layer: Layer) -> Layer:
        if isinstance(layer, (Conv, Linear)):
            return change(layer)
        if isinstance(layer, Residual):
            return dataclasses.replace(layer, body=map_weighted(layer.body, change),
                                       shortcut=map_weighted(layer.shortcut, change))
        if isinstance(layer, Concat):
            return Concat(tuple(map_weighted(branch, change) for branch in layer.branches))
        return layer

    return tuple(one(layer) for layer in layers)
