"""Fan-out of every input position of a synaptic layer: how many outputs one input spike reaches.

For a layer ``y = f(x)`` with all weights set to 1, the fan-out of input ``j`` is
``F_j = d/dx_j sum_i f_ones(x)_i``: for a convolution that is the number of (output channel, kernel
position) pairs whose window covers ``j`` (``C_out k^2 / s^2`` in the interior, fewer at the borders and
where the stride skips rows), for a linear layer ``N_out``, for a pool the number of windows covering ``j``
(padding is no input). The synaptic operations a set of input events costs is then
``sum_j 1[x_j != 0] F_j``, which equals ``sum(conv_ones(1[x != 0]))``, the convolution of the event map
with an all-ones kernel, summed.

Synaptic layers: ``nn.Conv2d``, ``nn.Linear``, ``nn.AvgPool2d`` (fixed weights ``1/k^2``) and TTFS layers
(class attribute ``is_ttfs_layer``) holding a ``weight`` ``[M, N]`` (dense) or ``[O, C, kh, kw]`` (conv, with
optional ``stride``/``padding`` attributes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_fan_out(
    in_shape: tuple[int, int, int],
    out_channels: int,
    kernel_size,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> torch.Tensor:
    """Fan-out ``[C, H, W]`` of a conv ``C -> out_channels`` on per-sample input ``in_shape = (C, H, W)``.

    ``F = d/dx sum(conv2d(x, ones[out_channels, C/groups, kh, kw]))`` (exact at borders and strides).
    """
    c = in_shape[0]
    kh, kw = _pair(kernel_size)
    x = torch.zeros((1, *in_shape), requires_grad=True)  # [1, C, H, W]
    ones = torch.ones(out_channels, c // groups, kh, kw)
    with torch.enable_grad():
        y = F.conv2d(x, ones, None, _pair(stride), _pair(padding), _pair(dilation), groups)
        (grad,) = torch.autograd.grad(y.sum(), x)
    return grad[0].round()  # [C, H, W]


def _ttfs_weight(module: nn.Module) -> torch.Tensor | None:
    """The ``weight`` of a TTFS layer (class attribute ``is_ttfs_layer``), None for other modules."""
    weight = getattr(module, "weight", None)
    is_ttfs = getattr(type(module), "is_ttfs_layer", False)
    return weight if is_ttfs and isinstance(weight, torch.Tensor) else None


def is_synaptic_layer(module: nn.Module) -> bool:
    """Conv, linear and average-pool layers, and TTFS layers with a ``weight`` (see the module docstring)."""
    return isinstance(module, (nn.Conv2d, nn.Linear, nn.AvgPool2d)) or _ttfs_weight(module) is not None


def fan_out_map(module: nn.Module, in_shape: tuple[int, ...]) -> torch.Tensor | None:
    """Fan-out ``[*in_shape]`` of ``module``'s inputs, or None when it is not a synaptic layer."""
    if isinstance(module, nn.Linear):
        return torch.full(in_shape, float(module.out_features))
    if isinstance(module, nn.Conv2d):
        return conv_fan_out(
            in_shape,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
        )
    if isinstance(module, nn.AvgPool2d):
        stride = module.stride if module.stride is not None else module.kernel_size
        return conv_fan_out(
            in_shape, in_shape[0], module.kernel_size, stride, module.padding, groups=in_shape[0]
        )
    weight = _ttfs_weight(module)
    if weight is not None and weight.dim() == 2:
        return torch.full(in_shape, float(weight.shape[0]))
    if weight is not None and weight.dim() == 4:
        stride, padding = getattr(module, "stride", 1), getattr(module, "padding", 0)
        return conv_fan_out(in_shape, weight.shape[0], tuple(weight.shape[2:]), stride, padding)
    return None
