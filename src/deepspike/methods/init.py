"""Weight initialisation shared by the rate-coded methods: ``w ~ N(0, kappa / fan_in)`` (He et al.)."""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, FLOAT32_TINY
from deepspike.layers.fan_out import WEIGHTED_LAYERS


def check_init_kappa(kappa: float | None) -> None:
    """A one-line ``ConfigError`` unless ``method.init_kappa`` is None (torch's own initialisation) or in
    ``(0, FLOAT32_MAX]`` (``w ~ N(0, kappa / fan_in)`` is drawn in float32: 1e300 drew infinite weights)."""
    if kappa is not None and not 0 < kappa <= FLOAT32_MAX:
        raise ConfigError(f"bad value {kappa!r} for method.init_kappa: expected > 0 and at most {FLOAT32_MAX:.4g}, "
                          "or null")


def init_weights(module: nn.Module, kappa: float) -> None:
    """``w ~ N(0, kappa / fan_in)`` for every ``Conv2d``/``Linear``/``DelayedLinear`` in ``module``; biases set to
    zero (a delayed layer's delays stay as drawn).

    fan_in = ``C_in * k_h * k_w`` for a convolution (weight ``[C_out, C_in, k_h, k_w]``), ``F_in`` for a linear
    layer (weight ``[F_out, F_in]``). lee2020: kappa 2 for plain nets, 1 for residual nets. A one-line
    ``ConfigError`` when a layer's standard deviation ``sqrt(kappa / fan_in)`` is below float32's smallest normal.
    """
    for m in module.modules():
        if isinstance(m, WEIGHTED_LAYERS):
            fan_in = m.weight[0].numel()  # [C_in, kh, kw] or [F_in]
            std = math.sqrt(kappa / fan_in)
            if std < FLOAT32_TINY:  # kappa 1e-80: float32 weights ~1e-41 or 0, a net that never fires nor learns
                raise ConfigError(f"method.init_kappa={kappa!r} draws a layer of fan-in {fan_in} from N(0, "
                                  f"{std:.3g}^2): below float32's smallest normal {FLOAT32_TINY:.4g}, its weights "
                                  "would be 0 or subnormal; give a larger init_kappa or null")
            with torch.no_grad():
                m.weight.normal_(0.0, std)
                if m.bias is not None:
                    m.bias.zero_()
