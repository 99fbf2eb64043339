"""A synaptic layer whose weight gradient comes from the presynaptic trace (OTTT, Xiao et al., NeurIPS 2022).

Online training through time runs one step at a time and backpropagates each step's loss at once, through the
spatial path only. OTTT keeps, per synaptic layer, the trace of its input ``a_t = lambda a_{t-1} + x_t``
(``a_0 = 0``; lambda the neurons' leak, 1 for IF) and takes the weight gradient of step t as ``g_t a_t^T``
instead of ``g_t x_t^T``: the trace stands in for the contribution of past inputs to the membrane that the
spatial-only gradient drops. One step of a layer, ``y = W x + b``:

    forward   y = layer(x)                   (the real input: the network computes what it always computes)
    backward  dL/dx = W^T g,  dL/dW = g a^T,  dL/db = sum g     (g = dL/dy; for a convolution, the same with
              the convolution's input and weight gradients)

Shapes: ``x`` and ``a`` one step ``[B, in]`` (Linear) or ``[B, C, H, W]`` (Conv2d); ``y`` ``[B, out]`` or
``[B, C', H', W']``. Under autocast (``train.precision=bf16``) the forward runs in bfloat16 and the backward in
``g``'s dtype (autograd casts the gradients to the parameters' and the input's dtypes).

Two options serve e-prop (``training.eprop``):

* ``bias_trace`` ``c_t``: the bias is a synapse from a constant input 1, so its gradient is ``c_t sum g`` with
  ``c_t = lambda c_{t-1} + 1`` (1, OTTT's bias gradient, by default);
* ``feedback``: a fixed matrix ``B`` of the weight's shape through which the gradient reaches the input,
  ``dL/dx = B^T g`` instead of ``W^T g`` (random feedback: Bellec et al. 2020's random e-prop, Lillicrap et al.
  2016's feedback alignment).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepspike.core.first_order import first_order_backward

TRACE_LAYERS = (nn.Linear, nn.Conv2d)


def _conv_args(layer: nn.Conv2d) -> dict:
    return {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation, "groups": layer.groups}


class _TraceWeightGradient(torch.autograd.Function):
    """``(x, trace, weight, bias, layer, bias_trace, feedback) -> layer(x)``; the weight gradient is taken from
    ``trace``, the bias gradient scaled by ``bias_trace``, the input gradient through ``feedback`` (None: the
    weight)."""

    @staticmethod
    def forward(ctx, x, trace, weight, bias, layer, bias_trace, feedback):
        ctx.layer, ctx.bias_trace = layer, bias_trace
        ctx.input_shape = x.shape
        ctx.has_bias = bias is not None
        ctx.save_for_backward(trace, weight if feedback is None else feedback)
        if isinstance(layer, nn.Conv2d):
            return F.conv2d(x, weight, bias, **_conv_args(layer))
        return F.linear(x, weight, bias)

    @staticmethod
    @first_order_backward("OTTT's trace weight gradient (layers.trace_gradient), which is not the forward's derivative")
    def backward(ctx, g):
        trace, backward_weight = ctx.saved_tensors  # the weight, or the fixed feedback matrix in its place
        layer, weight_shape = ctx.layer, backward_weight.shape
        trace, backward_weight = trace.to(g.dtype), backward_weight.to(g.dtype)  # bf16 autocast: g is bf16
        if isinstance(layer, nn.Conv2d):
            args = _conv_args(layer)
            gx = torch.nn.grad.conv2d_input(ctx.input_shape, backward_weight, g, **args) if ctx.needs_input_grad[0] \
                else None
            gw = torch.nn.grad.conv2d_weight(trace, weight_shape, g, **args) if ctx.needs_input_grad[2] else None
            gb = g.sum(dim=(0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[3] else None
        else:
            gx = g @ backward_weight if ctx.needs_input_grad[0] else None
            gw = g.flatten(0, -2).T @ trace.flatten(0, -2) if ctx.needs_input_grad[2] else None
            gb = g.flatten(0, -2).sum(dim=0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        if gb is not None and ctx.bias_trace != 1.0:
            gb = gb * ctx.bias_trace
        return gx, None, gw, gb, None, None, None


def trace_gradient_step(layer: nn.Module, x: torch.Tensor, trace: torch.Tensor, bias_trace: float = 1.0,
                        feedback: torch.Tensor | None = None) -> torch.Tensor:
    """``layer(x)`` for one step ``x [B, ...]`` whose weight gradient is taken from ``trace`` (same shape as
    ``x``), whose bias gradient is scaled by ``bias_trace`` and whose input gradient goes through ``feedback``
    (the weight's shape; None: the weight) (module docstring). ``layer``: an ``nn.Linear`` or ``nn.Conv2d``
    (``TRACE_LAYERS``)."""
    return _TraceWeightGradient.apply(x, trace.detach(), layer.weight, layer.bias, layer, bias_trace, feedback)
