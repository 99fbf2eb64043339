"""Method ``stdbp`` (Zhang et al. 2021): single-spike TTFS network of ReL-PSP neurons, exact gradients.

The ReL-PSP neuron integrates ``V(t) = sum_i w_i (t - t_i)_+`` and fires once at
``t_j = (theta + sum_C w_ji t_i) / sum_C w_ji`` (eq. 11); gradients ``(t_i - t_j) / sum_C w`` and
``w_ji / sum_C w`` (eq. 13-14). Loss: cross-entropy of ``softmax(-t)`` over the output times (eq. 12).
Input code ``t = alpha (255 - s) / 255`` with Gaussian input jitter (sigma 0.14) in training; no weight
constraints and no gradient normalisation (the paper's point), so the regularisers and the clip are off.
Initialisation from a trained ANN of the same shape: ``init_from: <ann run dir>``.

Same network, measures and prediction as ``ttfs`` (``methods.ttfs``); only the defaults differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepspike.methods.registry import register_method
from deepspike.methods.ttfs import TtfsMethod, TtfsOptions


@dataclass
class StdbpOptions(TtfsOptions):
    """``TtfsOptions`` with zhang2021's defaults: relpsp, ``255`` coding, jitter 0.14, ce, no reg/clip."""

    kernel: str = "relpsp"
    coding: str = "255"
    alpha: float = 3.0
    jitter: float = 0.14
    loss: str = "ce"
    weight_sum_cost: float = 0.0
    l2: float = 0.0
    grad_clip_rows: float | None = None


@register_method
class StdbpMethod(TtfsMethod):
    """zhang2021: ReL-PSP TTFS neurons trained by spike-timing-dependent backprop (STDBP)."""

    name = "stdbp"
    Options = StdbpOptions
    description = "single-spike TTFS, closed-form ReL-PSP neurons, exact gradients (zhang2021)"
