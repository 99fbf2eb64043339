"""Copy a trained ANN's weights into a spiking network built from the same spec, batch-norms folded.

A batch-norm in eval mode after a conv/linear layer (``y = gamma (z - mu) / sqrt(var + eps) + beta`` per
channel, ``z = W x + b``) folds into that layer: with ``g = gamma / sqrt(var + eps)``,

    W' = g[o] W[o, ...]        b' = g (b - mu) + beta        (b = 0 for a bias-free layer)

so the SNN, built from ``models.fold.fold_batch_norms(arch)``, has the same weighted layers with biases.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.batchnorm_fold import BATCH_NORMS
from deepspike.layers.batchnorm_fold import folded_affine as _fold
from deepspike.layers.fan_out import WEIGHTED_LAYERS


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """Conv and linear layers of ``model`` in registration (= build) order."""
    return [m for m in model.modules() if isinstance(m, WEIGHTED_LAYERS)]


def folded_weights(model: nn.Module) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor | None]]:
    """``(layer, W', b')`` for every conv/linear of ``model`` in build order, the batch-norm that follows it
    (the next module in registration order, as ``methods.build`` places it) folded in (module docstring)."""
    modules = list(model.modules())
    folded = []
    for i, m in enumerate(modules):
        if not isinstance(m, WEIGHTED_LAYERS):
            continue
        weight, bias = m.weight.detach(), None if m.bias is None else m.bias.detach()
        following = modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(following, BATCH_NORMS):
            weight, bias = _fold(weight, bias, following)
        folded.append((m, weight, bias))
    return folded


def copy_ann_weights(ann: nn.Module, snn: nn.Module) -> None:
    """``snn``'s i-th conv/linear layer takes the i-th of ``ann`` (weights and biases, batch-norms folded),
    unscaled.

    Both come from one architecture spec (the SNN's with its batch-norms folded), so the layers pair up in
    build order; a type or shape mismatch raises ``ConfigError``.
    """
    src, dst = folded_weights(ann), weighted_layers(snn)
    if len(src) != len(dst):
        raise ConfigError(
            f"ANN has {len(src)} weighted layers but the SNN has {len(dst)}: not the same architecture"
        )
    for i, ((a, weight, bias), s) in enumerate(zip(src, dst, strict=True)):
        if type(a) is not type(s) or weight.shape != s.weight.shape or (bias is None) != (s.bias is None):
            raise ConfigError(f"weighted layer {i} differs: ANN {a} vs SNN {s}")
        s.weight.data.copy_(weight)
        if bias is not None:
            s.bias.data.copy_(bias)
