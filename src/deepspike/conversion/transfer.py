"""Copy a trained ANN's weights into the converted SNN built from the same spec."""

from __future__ import annotations

from torch import nn

from deepspike.core.errors import ConfigError

WEIGHTED = (nn.Conv2d, nn.Linear)


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """Conv and linear layers of ``model`` in registration (= build) order."""
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]


def copy_ann_weights(ann: nn.Module, snn: nn.Module) -> None:
    """``snn``'s i-th conv/linear layer takes the i-th of ``ann`` (weights and biases), unscaled.

    Both come from one architecture spec, so the layers pair up in build order; a type or shape mismatch
    raises ``ConfigError``.
    """
    src, dst = weighted_layers(ann), weighted_layers(snn)
    if len(src) != len(dst):
        raise ConfigError(
            f"ANN has {len(src)} weighted layers but the SNN has {len(dst)}: not the same architecture"
        )
    for i, (a, s) in enumerate(zip(src, dst, strict=True)):
        if type(a) is not type(s) or a.weight.shape != s.weight.shape or (a.bias is None) != (s.bias is None):
            raise ConfigError(f"weighted layer {i} differs: ANN {a} vs SNN {s}")
        s.weight.data.copy_(a.weight.data)
        if a.bias is not None:
            s.bias.data.copy_(a.bias.data)
