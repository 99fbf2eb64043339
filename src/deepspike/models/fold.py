"""Batch-norm folding on the spec side: a ``norm=True`` conv/linear becomes the same layer with a bias.

At inference a batch-norm after a weighted layer is an affine map per channel, so ``BN(W x + b)`` is one
layer ``W' x + b'`` (the weights are folded by ``methods.weight_transfer.folded_weights``). A network built from
the folded spec has the same conv/linear layers in the same order, now with biases and without the norms.
"""

from __future__ import annotations

import dataclasses

from deepspike.models.layer_specs import Attention, Concat, Conv, Layer, Linear, Residual
from deepspike.models.spec import Architecture


def fold_batch_norms(arch: Architecture) -> Architecture:
    """``arch`` with every ``Conv``/``Linear(norm=True)`` replaced by ``norm=False, bias=True`` (at any depth)."""
    return dataclasses.replace(arch, layers=_fold(arch.layers))


def has_batch_norm(arch: Architecture) -> bool:
    """True when any conv/linear of ``arch`` has ``norm=True``, or ``arch`` has attention (its projections do)."""
    return any(getattr(visit.layer, "norm", False) or isinstance(visit.layer, Attention) for visit in arch.visits())


def _fold(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    return tuple(_fold_layer(layer) for layer in layers)


def _fold_layer(layer: Layer) -> Layer:
    if isinstance(layer, (Conv, Linear)) and layer.norm:
        return dataclasses.replace(layer, norm=False, bias=True)
    if isinstance(layer, Residual):
        return dataclasses.replace(layer, body=_fold(layer.body), shortcut=_fold(layer.shortcut))
    if isinstance(layer, Concat):
        return Concat(tuple(_fold(branch) for branch in layer.branches))
    return layer
