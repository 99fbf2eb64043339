"""Weight initialisation shared by the rate-coded methods: ``w ~ N(0, kappa / fan_in)`` (He et al.)."""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.layers.fan_out import WEIGHTED_LAYERS


def init_weights(module: nn.Module, kappa: float) -> None:
    """``w ~ N(0, kappa / fan_in)`` for every ``Conv2d``/``Linear``/``DelayedLinear`` in ``module``; biases set to
    zero (a delayed layer's delays stay as drawn).

    fan_in = ``C_in * k_h * k_w`` for a convolution (weight ``[C_out, C_in, k_h, k_w]``), ``F_in`` for a linear
    layer (weight ``[F_out, F_in]``). lee2020: kappa 2 for plain nets, 1 for residual nets.
    """
    for m in module.modules():
        if isinstance(m, WEIGHTED_LAYERS):
            fan_in = m.weight[0].numel()  # [C_in, kh, kw] or [F_in]
            with torch.no_grad():
                m.weight.normal_(0.0, math.sqrt(kappa / fan_in))
                if m.bias is not None:
                    m.bias.zero_()
