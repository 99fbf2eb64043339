"""A synaptic layer whose weight gradient comes from the presynaptic trace (OTTT, Xiao et al., NeurIPS 2022).

Online training through time runs one step at a time and backpropagates each step's loss at once, through the
spatial path only. OTTT keeps, per synaptic layer, the trace of its input ``a_t = lambda a_{t-1} + x_t``
(``a_0 = 0``; lambda the neurons' leak, 1 for IF) and takes the weight gradient of step t as ``g_t a_t^T``
instead of ``g_t x_t^T``: the trace stands in for the contribution of past inputs to the membrane that the
spatial-only gradient drops. One step of a layer, ``y = W x + b``:

    forward   y = layer(x)                   (the real input: the network computes what it always computes)
    backward  dL/dx = W^T g,  dL/dW = g a^T,  dL/db = sum g     (g = dL/dy; for a convolution, the same with
              the convolution's input and weight gradients, through the layer's own padding: reflect, replicate
              or circular, and ``"same"`` / ``"valid"``, are padded as ``nn.Conv2d`` pads, ``x`` and ``a`` alike)

Every traced layer takes it, the classifier that feeds the per-step readout included: ``g_t a_t^T`` there, not the exact
per-step gradient ``g_t s_t^T`` of the stateless ``o_t = W s_t``, because that is OTTT's algorithm: its official code
(github.com/pkuxmq/OTTT-SNN, ``models/spiking_vgg.py``) wraps the classifier's ``nn.Linear`` in the same trace op
(``WrapedSNNOp``, under ``grad_with_rate``: OTTT_A) as its hidden convolutions, the neurons handing on ``(s_t, a_t)``
(``modules/neuron.py``, ``rate_tracking``); pinned by hand in
``tests/training/test_temporal_grad.py::test_online_gradients_equal_the_hand_derived_ones``. The first layer, fed by the
encoder, takes the trace of its input too (the derivation, the membrane's leak times past inputs, holds for any layer's
input); that code leaves its first convolution unwrapped (``g_t x_t^T``). SLTT (no trace) takes ``g_t s_t^T``
everywhere, its classifier included, as SLTT's code does (github.com/qymeng94/SLTT, a plain ``nn.Linear``); e-prop's
readout layers take the trace of decay ``kappa`` (``training.eprop``; ``kappa = 0``: ``g_t s_t^T``), Bellec et al.'s
output-weight update ``sum_t (y_t - y*_t) F_kappa(z_t)``.

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
    """The convolution's arguments, its padding as numbers: 0 where ``_padded`` pads the input itself."""
    padding = 0 if _own_padding(layer) else layer.padding
    return {"stride": layer.stride, "padding": padding, "dilation": layer.dilation, "groups": layer.groups}


def _own_padding(layer: nn.Conv2d) -> bool:
    """Whether ``layer`` pads its input before convolving (as ``nn.Conv2d`` does itself): a ``padding_mode`` other
    than zeros (reflect, replicate, circular), or padding given as ``"same"`` / ``"valid"``, whose sides may differ
    (``"same"`` with an even kernel), which ``torch.nn.grad``'s convolution gradients cannot take."""
    return layer.padding_mode != "zeros" or isinstance(layer.padding, str)


def _padded(x: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
    """``x`` ``[B, C, H, W]`` padded as ``layer`` pads it (``nn.Conv2d._conv_forward``), for ``_own_padding``."""
    mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
    return F.pad(x, layer._reversed_padding_repeated_twice, mode=mode)


def _unpadded_grad(g_padded: torch.Tensor, shape: torch.Size, layer: nn.Conv2d) -> torch.Tensor:
    """The gradient reaching ``x`` of ``shape`` through ``_padded`` (its adjoint, which depends on the shape only)."""
    with torch.enable_grad():
        stand_in = torch.zeros(shape, dtype=g_padded.dtype, device=g_padded.device, requires_grad=True)
        (grad,) = torch.autograd.grad(_padded(stand_in, layer), stand_in, g_padded)
    return grad


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
            return F.conv2d(_padded(x, layer) if _own_padding(layer) else x, weight, bias, **_conv_args(layer))
        return F.linear(x, weight, bias)

    @staticmethod
    @first_order_backward("OTTT's trace weight gradient (layers.trace_gradient), which is not the forward's derivative")
    def backward(ctx, g):
        trace, backward_weight = ctx.saved_tensors  # the weight, or the fixed feedback matrix in its place
        layer, weight_shape = ctx.layer, backward_weight.shape
        trace, backward_weight = trace.to(g.dtype), backward_weight.to(g.dtype)  # bf16 autocast: g is bf16
        if isinstance(layer, nn.Conv2d):
            gx, gw = _conv_grads(layer, ctx.input_shape, trace, backward_weight, weight_shape, g, ctx.needs_input_grad)
            gb = g.sum(dim=(0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[3] else None
        else:
            gx = g @ backward_weight if ctx.needs_input_grad[0] else None
            gw = g.flatten(0, -2).T @ trace.flatten(0, -2) if ctx.needs_input_grad[2] else None
            gb = g.flatten(0, -2).sum(dim=0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        if gb is not None and ctx.bias_trace != 1.0:
            gb = gb * ctx.bias_trace
        return gx, None, gw, gb, None, None, None


def _conv_grads(layer: nn.Conv2d, input_shape: torch.Size, trace: torch.Tensor, backward_weight: torch.Tensor,
                weight_shape: torch.Size, g: torch.Tensor, needed) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(dL/dx, dL/dW)`` of a traced convolution (module docstring): the transposed convolution of ``g`` with
    ``backward_weight``, and the weight gradient of ``g`` on the trace; through the layer's own padding
    (``_own_padding``) where it pads the input itself."""
    args, own = _conv_args(layer), _own_padding(layer)
    gx = gw = None
    if needed[0]:
        shape = _padded(torch.empty(input_shape, device="meta"), layer).shape if own else input_shape
        gx = torch.nn.grad.conv2d_input(shape, backward_weight, g, **args)
        gx = _unpadded_grad(gx, input_shape, layer) if own else gx
    if needed[2]:
        gw = torch.nn.grad.conv2d_weight(_padded(trace, layer) if own else trace, weight_shape, g, **args)
    return gx, gw


def trace_gradient_step(layer: nn.Module, x: torch.Tensor, trace: torch.Tensor, bias_trace: float = 1.0,
                        feedback: torch.Tensor | None = None) -> torch.Tensor:
    """``layer(x)`` for one step ``x [B, ...]`` whose weight gradient is taken from ``trace`` (same shape as
    ``x``), whose bias gradient is scaled by ``bias_trace`` and whose input gradient goes through ``feedback``
    (the weight's shape; None: the weight) (module docstring). ``layer``: an ``nn.Linear`` or ``nn.Conv2d``
    (``TRACE_LAYERS``)."""
    return _TraceWeightGradient.apply(x, trace.detach(), layer.weight, layer.bias, layer, bias_trace, feedback)
