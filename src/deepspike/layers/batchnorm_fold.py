"""Fold an eval-mode batch-norm into the conv/linear layer before it: the inference form of a BN network.

A batch-norm in eval mode after a conv/linear layer (``y = gamma (z - mu) / sqrt(var + eps) + beta`` per
channel, ``z = W x + b``) is that layer with, for ``g = gamma / sqrt(var + eps)``,

    W' = g[o] W[o, ...]        b' = g (b - mu) + beta        (b = 0 for a bias-free layer)

exactly (tdBN too: its ``bn.weight`` is the effective ``lambda alpha V_th``). TEBN's per-step scale ``p_t``
multiplies step t alone, and one folded weight serves every step, so it is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.fan_out import WEIGHTED_LAYERS
from deepspike.layers.temporal_batchnorm import TemporalEffectiveBatchNorm
from deepspike.layers.time_distributed import TimeDistributed

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def folded_affine(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm
) -> tuple[torch.Tensor, torch.Tensor]:
    """``W' = g W``, ``b' = g (b - mu) + beta`` with ``g = gamma / sqrt(var + eps)`` per output channel."""
    if bn.running_mean is None or bn.running_var is None:
        raise ConfigError(f"{bn} keeps no running statistics; it cannot be folded")
    if bn.num_features != weight.shape[0]:
        raise ConfigError(f"{bn} follows a layer with {weight.shape[0]} outputs")
    gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(bn.running_var)
    beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(bn.running_mean)
    g = gamma / torch.sqrt(bn.running_var + bn.eps)
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight * g.reshape(shape), g * (b - bn.running_mean) + beta


def _unwrapped(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, TimeDistributed) else module


def fold_batch_norms_(model: nn.Module) -> nn.Module:
    """In place: every batch-norm (bn, tdBN) directly after a conv/linear layer in a ``nn.Sequential`` of
    ``model`` (either may be wrapped in ``TimeDistributed``) is folded into that layer, which gains a bias, and
    removed from the container (``nn.Sequential`` renumbers, so the keys are those of the net built from
    ``models.fold.fold_batch_norms(arch)``). Returns ``model``; TEBN raises ``ConfigError`` (module docstring)."""
    if any(isinstance(m, TemporalEffectiveBatchNorm) for m in model.modules()):
        raise ConfigError("TEBN (method.norm=tebn) scales each time step by its own p_t, which no single folded "
                          "weight can hold: train with method.norm=bn or tdbn to fold or export the net")
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        i = 0
        while i + 1 < len(seq):
            layer, bn = _unwrapped(seq[i]), _unwrapped(seq[i + 1])
            if isinstance(layer, WEIGHTED_LAYERS) and isinstance(bn, BATCH_NORMS):
                weight, bias = folded_affine(layer.weight.detach(), layer.bias, bn)
                with torch.no_grad():
                    layer.weight.copy_(weight)
                    layer.bias = nn.Parameter(bias.detach().clone())
                del seq[i + 1]
            i += 1
    return model
