"""Average pooling that keeps nothing but shapes for its backward pass.

Autograd's ``avg_pool2d`` saves its whole input for the backward pass although the gradient

    dL/dx[b, c, i, j] = sum over windows (p, q) covering (i, j) of dL/dy[b, c, p, q] / |window(p, q)|

depends only on the input's *shape* (|window| is k*k, or the count of real pixels when padding is not
counted). In a spiking net the input is a spike tensor ``[T*B, C, H, W]`` that nothing else keeps (the
neuron before it saves its membrane, the convolution after it saves the pooled map), so this saved copy is
pure overhead: as large as a neuron layer's whole output, for every pooling layer.

``LeanAvgPool2d`` is ``nn.AvgPool2d`` (same arguments, same outputs, same gradients bit for bit) whose
backward calls ATen's ``avg_pool2d_backward`` with a zero-stride stand-in of the input's shape, so the
spikes are freed as soon as the next layer has read them. It subclasses ``nn.AvgPool2d``: everything that
recognises average pooling (cost counting, conversion, NIR export) treats it as one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


class _LeanAvgPool(torch.autograd.Function):
    """``x [N, C, H, W] -> avg_pool2d(x)``; saves the input's shape, dtype and device only."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        ctx.args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        ctx.shape, ctx.dtype, ctx.device = x.shape, x.dtype, x.device
        return F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        kernel, stride, padding, ceil_mode, count_include_pad, divisor_override = ctx.args
        stand_in = torch.empty((), dtype=ctx.dtype, device=ctx.device).expand(ctx.shape)  # shape only, no memory
        grad_x = torch.ops.aten.avg_pool2d_backward(
            grad.contiguous(), stand_in, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
        )
        return grad_x, None, None, None, None, None, None


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


class LeanAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` that does not save its input for backward (module docstring); 4-D inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad) or x.dim() != 4:
            return super().forward(x)
        stride = self.stride if self.stride is not None else self.kernel_size
        return _LeanAvgPool.apply(
            x, _pair(self.kernel_size), _pair(stride), _pair(self.padding), self.ceil_mode,
            self.count_include_pad, self.divisor_override,
        )
