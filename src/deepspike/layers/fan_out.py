"""Fan-out of every input position of a synaptic layer: how many outputs one input spike reaches.

For a layer ``y = f(x)`` with all weights set to 1, the fan-out of input ``j`` is
``F_j = d/dx_j sum_i f_ones(x)_i``: for a convolution that is the number of (output channel, kernel
position) pairs whose window covers ``j`` (``C_out k^2 / s^2`` in the interior, fewer at the borders and
where the stride skips rows), for a linear layer ``N_out``, for a pool the number of windows covering ``j``
(padding is no input). The synaptic operations a set of input events costs is then
``sum_j 1[x_j != 0] F_j``, which equals ``sum(conv_ones(1[x != 0]))``, the convolution of the event map
with an all-ones kernel, summed.

Synaptic layers: ``nn.Conv2d``, ``nn.Linear``, TTFS layers (class attribute ``is_ttfs_layer``) holding a
``weight`` ``[M, N]`` (dense) or ``[O, C / groups, kh, kw]`` (conv, with optional ``stride``/``padding``/``dilation``
attributes; ``groups`` follows from the weight and the input's ``C``), and
every average pool, whose fixed weights are synapses however the method builds it:

- ``nn.AvgPool2d`` (and ``LeanAvgPool2d``; stbp, converted nets), input ``[N, C, H, W]``, weights ``1/k^2``;
- ``SpikingAvgPool`` (spikebp: the pool feeds its own IF neuron), input ``[T, B, C, H, W]`` (time-major, so the
  recorder's per-call input shape is ``(B, C, H, W)``), weights ``1/k^2``;
- ``TTFSAvgPool2d`` (ttfs/stdbp: one TTFS neuron per window), input times ``[B, C, H, W]``, weights
  ``theta/(N-1)``.

Each input spike of a pool reaches the windows covering it: ``F_j`` as for a depthwise conv with an all-ones
``k x k`` kernel (padding is no input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.layers.delays import DelayedLinear
from deepspike.layers.spiking_pool import SpikingAvgPool
from deepspike.ttfs.layers import TTFSAvgPool2d


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pad_amounts(padding, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """``F.pad``'s ``(left, right, top, bottom)`` of a conv's ``padding``: ints, a pair, ``"valid"`` (none) or
    ``"same"`` (``d (k - 1)`` in all, the smaller half first, as ``nn.Conv2d`` splits it)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        (th, tw) = (d * (k - 1) for d, k in zip(dilation, kernel, strict=True))
        return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
    ph, pw = _pair(padding)
    return (pw, pw, ph, ph)


def conv_fan_out(
    in_shape: tuple[int, int, int],
    out_channels: int,
    kernel_size,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Fan-out ``[C, H, W]`` of a conv ``C -> out_channels`` on per-sample input ``in_shape = (C, H, W)``.

    ``F = d/dx sum(conv2d(pad(x), ones[out_channels, C/groups, kh, kw]))`` (exact at borders and strides), ``pad``
    the conv's ``padding`` (ints, a pair, ``"same"`` or ``"valid"``) in its ``padding_mode``: ``"zeros"`` pads no
    input, ``"circular"``, ``"reflect"`` and ``"replicate"`` pad copies of border inputs, whose taps count.
    """
    c = in_shape[0]
    kernel, dil = _pair(kernel_size), _pair(dilation)
    x = torch.zeros((1, *in_shape), requires_grad=True)  # [1, C, H, W]
    ones = torch.ones(out_channels, c // groups, *kernel)
    with torch.enable_grad():
        mode = "constant" if padding_mode == "zeros" else padding_mode
        padded = F.pad(x, _pad_amounts(padding, kernel, dil), mode=mode)  # [1, C, H + pads, W + pads]
        y = F.conv2d(padded, ones, None, _pair(stride), 0, dil, groups)
        (grad,) = torch.autograd.grad(y.sum(), x)
    return grad[0].round()  # [C, H, W]


def _ttfs_weight(module: nn.Module) -> torch.Tensor | None:
    """The ``weight`` of a TTFS layer (class attribute ``is_ttfs_layer``), None for other modules."""
    weight = getattr(module, "weight", None)
    is_ttfs = getattr(type(module), "is_ttfs_layer", False)
    return weight if is_ttfs and isinstance(weight, torch.Tensor) else None


WEIGHTED_LAYERS = (nn.Conv2d, nn.Linear, DelayedLinear)
"""The rate nets' layers with a weight ``[out, ...]`` whose rows are their output channels (a delayed layer's row m
feeds output m at every step alike): what is initialised, quantised and folded with a batch-norm."""


def is_synaptic_layer(module: nn.Module) -> bool:
    """Conv, linear (delayed ones too) and average-pool layers (every method's, see the module docstring), and
    TTFS layers with a ``weight``."""
    return isinstance(module, (*WEIGHTED_LAYERS, *POOLS)) or _ttfs_weight(module) is not None


POOLS = (nn.AvgPool2d, SpikingAvgPool, TTFSAvgPool2d)
"""Every method's average pools (module docstring)."""


def _pool_fan_out(module: nn.Module, in_shape: tuple[int, ...]) -> torch.Tensor:
    """Fan-out of an average pool's inputs: ``[C, H, W]`` for ``in_shape = (C, H, W)``, or ``[B, C, H, W]`` (the
    same map for every sample) for ``SpikingAvgPool``'s time-major input, whose shape less its first axis is
    ``(B, C, H, W)``."""
    return pooled_fan_out(module, in_shape, None)


def pooled_fan_out(pool: nn.Module, in_shape: tuple[int, ...], next_fan: torch.Tensor | None) -> torch.Tensor:
    """Fan-out ``[*in_shape]`` of an average pool's inputs ``(..., C, H, W)`` through the pool and, where the pool has
    no neurons of its own and folds into the next synaptic layer (a windowed TTFS net, ``methods.window_network``),
    that layer: ``F'_j = sum_{windows w covering j} F_next(w)``, ``next_fan`` the next layer's fan-out of the pool's
    outputs ``[C, H', W']`` in any layout of that many entries (a flattened ``[C H' W']`` before a linear layer);
    None: 1 per window (the pool's own fan-out, the windows covering ``j``). Padding is no input. Each input of a pool
    with stride >= kernel (every built net's) lies in one window, so a spike there reaches ``F_next`` of its window,
    as the folded synapses ``W A`` (``A`` the pool) do. A pool's ``ceil_mode`` (``nn.AvgPool2d``) adds its partial
    windows at the far borders: the window sums are ``avg_pool2d`` with divisor 1 in the pool's own mode."""
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    c, h, w = in_shape[-3:]
    x = torch.zeros((1, c, h, w), requires_grad=True)
    ceil_mode = bool(getattr(pool, "ceil_mode", False))
    with torch.enable_grad():  # the window sums [1, C, H', W'] (padding adds zeros: no input)
        y = F.avg_pool2d(x, pool.kernel_size, stride, pool.padding, ceil_mode, True, 1)
        weights = torch.ones_like(y) if next_fan is None else next_fan.to(y.dtype).reshape(y.shape)
        (grad,) = torch.autograd.grad((y * weights).sum(), x)
    return grad[0].round().expand(in_shape)


def fan_out_map(module: nn.Module, in_shape: tuple[int, ...]) -> torch.Tensor | None:
    """Fan-out ``[*in_shape]`` of ``module``'s inputs, or None when it is not a synaptic layer."""
    if isinstance(module, nn.Linear | DelayedLinear):  # a delayed synapse delivers each spike once, later
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
            module.padding_mode,
        )
    if isinstance(module, POOLS):
        return _pool_fan_out(module, in_shape)
    weight = _ttfs_weight(module)
    if weight is not None and weight.dim() == 2:
        return torch.full(in_shape, float(weight.shape[0]))
    if weight is not None and weight.dim() == 4:
        stride, padding, dilation = (getattr(module, k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1)))
        groups = in_shape[0] // weight.shape[1]  # weight [O, C / groups, kh, kw] (was: one group)
        return conv_fan_out(in_shape, weight.shape[0], tuple(weight.shape[2:]), stride, padding, dilation, groups)
    return None
