"""lee2020's output layer: a non-spiking leaky integrator read out as ``V(T) / T`` with derivative ``1/T``."""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.readout import leaky_mean
from deepspike.neurons.update_cost import kept_sum_ops


class _IntegratorOutput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, leak: float) -> torch.Tensor:
        ctx.steps = x.shape[0]
        return leaky_mean(x, leak)  # [B, K]; in float32 for a bfloat16 x (train.precision=bf16), rounded once

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        t = ctx.steps
        return (grad / t).unsqueeze(0).expand(t, *grad.shape).clone(), None  # [B, K] -> [T, B, K]


class LeakyIntegratorReadout(nn.Module):
    """``output = V(T) / T`` with ``V(T) = sum_t leak^(T-t) x_t`` (threshold "infinite": it never fires).

    Backward (lee2020 eq. 23): the leak is treated as noise, ``V(T) ~ net = sum_t x_t``, so
    ``d output / d x_t = 1/T`` for every step. x: currents ``[T, B, K]`` -> scores ``[B, K]``.
    """

    prices_own_updates = True  # non-spiking output neurons whose updates are priced (layers.activity_recorder)

    def __init__(self, leak: float = 0.99) -> None:
        super().__init__()
        if not 0.0 < leak <= 1.0:
            raise ConfigError(f"readout leak={leak} is outside (0, 1]")
        self.leak = leak

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _IntegratorOutput.apply(x, float(self.leak))

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per output neuron and step (``neurons.update_cost``): ``V_t = leak V_{t-1} + x_t``."""
        return kept_sum_ops(self.leak)

    def extra_repr(self) -> str:
        return f"leak={self.leak:g}"
