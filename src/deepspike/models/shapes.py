"""Shape rules of single layer specs: what one layer, or one block's junction, does to a per-sample shape.

Conv/pool: ``(C, H, W) -> (C', H', W')`` with ``H' = floor((H + 2 p - k) / s) + 1``; linear ``(F,) -> (M,)``;
flatten ``(C, H, W) -> (C H W,)``; dropout and a lone activation keep the shape, and so does attention (on a map
whose ``C`` its heads divide). A residual junction needs its body and shortcut to agree; a concat junction sums
its branches' channels ``(C_1 + ... + C_n, H, W)`` (same ``H, W``).
Walking a whole sequence (and a block's branches) is ``models.walk``.
"""

from __future__ import annotations

import math

from deepspike.core.errors import ConfigError
from deepspike.models.layer_specs import (
    Activation,
    Attention,
    Block,
    Conv,
    Dropout,
    Flatten,
    Layer,
    Linear,
    Pool,
    Residual,
    Shape,
)


def layer_output_shape(layer: Layer, shape: Shape) -> Shape:
    """Per-sample output shape of a layer without branches (not ``Residual``/``Concat``) for input ``shape``.

    Raises ``ConfigError`` when the layer does not fit its input (e.g. a convolution on a flattened vector, a
    kernel larger than the map) or is no layer spec at all.
    """
    if isinstance(layer, Conv):
        _, h, w = _image(shape, layer)
        return _positive((layer.out_channels, *_window_grid(h, w, layer, layer.stride)), layer, shape)
    if isinstance(layer, Pool):
        c, h, w = _image(shape, layer)
        return _positive((c, *_window_grid(h, w, layer, layer.step)), layer, shape)
    if isinstance(layer, Linear):
        if len(shape) != 1:
            raise ConfigError(
                f"Linear({layer.out_features}) needs a flat input, got shape {shape}; add Flatten()"
            )
        return (layer.out_features,)
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, Dropout | Activation):
        return shape
    if isinstance(layer, Attention):
        if _image(shape, layer)[0] % layer.heads:
            raise ConfigError(f"{layer}: {layer.heads} heads do not divide the map's {shape[0]} channels")
        return shape
    raise ConfigError(f"unknown layer spec {layer!r}")


def junction_shape(block: Block, branch_shapes: list[Shape]) -> Shape:
    """Output shape of ``block`` from its branches' output shapes (body, shortcut; or branch 0, 1, ...)."""
    if isinstance(block, Residual):
        body, short = branch_shapes
        if body != short:
            raise ConfigError(f"residual branches disagree: body gives {body}, shortcut gives {short}")
        return body
    if any(o[1:] != branch_shapes[0][1:] for o in branch_shapes):
        raise ConfigError(f"concat branches disagree on spatial size: {branch_shapes}")
    return (sum(o[0] for o in branch_shapes), *branch_shapes[0][1:])


def _window_grid(h: int, w: int, layer: Conv | Pool, step: int) -> tuple[int, int]:
    """``(H', W')`` of a ``k x k`` window sliding by ``step`` s over a ``p``-padded map.

    ``H' = floor((H + 2p - k) / s) + 1`` (likewise ``W'``).
    """
    k, p = layer.kernel_size, layer.padding
    return (h + 2 * p - k) // step + 1, (w + 2 * p - k) // step + 1


def _image(shape: Shape, layer: Layer) -> Shape:
    if len(shape) != 3:
        raise ConfigError(f"{type(layer).__name__} needs an image input (C, H, W), got shape {shape}")
    return shape


def _positive(out: Shape, layer: Layer, shape: Shape) -> Shape:
    if min(out) <= 0:
        raise ConfigError(f"{layer} does not fit input shape {shape} (output would be {out})")
    return out
