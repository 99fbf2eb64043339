"""Readouts: from the output layer's time series ``[T, B, K]`` to class scores ``[B, K]``.

``steps(x)`` gives the per-step scores ``o_t`` ``[T, B, K]`` whose mean over T is ``forward(x)`` (what a per-step
loss such as TET, ``methods.losses.tet_loss``, scores); the max-membrane readout has none and refuses.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.core.precision import LOW_PRECISION, at_least_float32
from deepspike.neurons.synaptic import synaptic_current
from deepspike.neurons.update_cost import kept_sum_ops, plus


def check_readout_decay(decay: float, where: str) -> None:
    """``ConfigError`` unless ``decay`` is a number (not a bool) in [0, 1]; ``where`` names the readout."""
    if not (is_finite(decay) and 0.0 <= decay <= 1.0):
        raise ConfigError(f"{where} decay must be a number in [0, 1], got {decay!r}")


def leaky_mean(x: torch.Tensor, decay: float) -> torch.Tensor:
    """``V_T / T`` with ``V_T = sum_t decay^(T-t) x_t`` (t = 1..T): ``x [T, B, ...] -> [B, ...]``. A bfloat16 / float16
    ``x`` is weighted and summed in float32 and the result rounded once to its dtype (``MembraneReadout.forward``); an
    integer ``x`` is read as the default float dtype (it truncated ``(0.5 * 1 + 1) / 2`` to 0)."""
    x = _floating(x)
    t = x.shape[0]
    wide = torch.float32 if x.dtype in LOW_PRECISION else x.dtype
    powers = decay ** torch.arange(t - 1, -1, -1, dtype=wide, device=x.device)  # [T]
    # (a product and a sum, not tensordot: autocast would run a matrix product in bfloat16 again)
    return ((powers.view(t, *[1] * (x.dim() - 1)) * x.to(wide)).sum(dim=0) / t).to(x.dtype)


def _floating(x: torch.Tensor) -> torch.Tensor:
    """``x``, or an integer/bool ``x`` as the default float dtype (a membrane holds fractions: ``decay * V``)."""
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def step_mean(x: torch.Tensor) -> torch.Tensor:
    """``(1/T) sum_t x_t``: per-step values ``[T, B, K] -> [B, K]`` (spikes, whose mean is the firing rate, or TET's
    per-step scores), in float32 at least, so float32 for bfloat16 / float16 steps (autocast): a rate ``c / T`` kept in
    bfloat16 (8 significant bits) merges neighbouring counts from ``T`` ~ 256 on (from ``T G`` ~ 256 on once voting
    averages ``G`` neurons: T = 30, G = 10 tied classes whose counts differ), which ``argmax`` then breaks towards the
    lower class."""
    return x.mean(dim=0, dtype=at_least_float32(x.dtype))


class SpikeRateReadout(nn.Module):
    """Spiking output neurons; score = firing rate ``(1/T) sum_t s_t`` (wu2019's output, in [0, 1]; float32 under
    bfloat16 autocast, ``step_mean``)."""

    def __init__(self, neuron: nn.Module) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return step_mean(self.neuron(x))  # [T, B, K] -> [B, K]

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """``o_t = s_t``, the output spikes ``[T, B, K]``."""
        return self.neuron(x)


class MembraneReadout(nn.Module):
    """Non-spiking integrator: ``V_T = sum_t decay^(T-t) x_t``; score = ``V_T / T`` (lee2020 with decay 1).

    With ``decay = 1`` this is the mean input current over time, whose derivative w.r.t. each ``x_t``
    is ``1/T``.
    """

    prices_own_updates = True  # non-spiking output neurons whose updates are priced (layers.activity_recorder)

    def __init__(self, decay: float = 1.0) -> None:
        super().__init__()
        check_readout_decay(decay, "MembraneReadout")
        self.decay = decay

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per output neuron and step (``neurons.update_cost``): ``V_t = decay V_{t-1} + x_t``, an
        addition with decay 1 (the final ``/ T`` is once per inference and left out)."""
        return kept_sum_ops(self.decay)

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """``o_t = x_t`` ``[T, B, K]``, the output current of each step (decay 1: their mean is ``forward``)."""
        if self.decay != 1.0:
            raise ConfigError(f"per-step scores need a membrane readout with decay 1, not {self.decay}")
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, K] -> V_T / T [B, K]``. A bfloat16/float16 ``x`` (train.precision=bf16) is weighted and summed in
        float32 and the score rounded once to its dtype, as ``neurons.dynamics.membrane_readout`` keeps its running
        membrane: in bfloat16 the decay 0.9 was 0.8984375 and the sum of 32 steps 1e-2 off on scores of 0.9."""
        x = _floating(x)
        if self.decay == 1.0:
            return x.mean(dim=0)
        return leaky_mean(x, self.decay)

    def extra_repr(self) -> str:
        return f"decay={self.decay}"


class MaxMembraneReadout(nn.Module):
    """Non-spiking leaky integrator read out at its peak (the SHD readout of Cramer et al. 2020 and Zenke & Vogels
    2021; snnTorch's ``ce_max_membrane_loss`` takes the same max)::

        V_t = decay V_{t-1} + x_t   (V_0 = 0),      score = max_t V_t

    x: the output layer's currents ``[T, B, K]`` -> scores ``[B, K]``. The integrator is the linear scan of
    ``neurons.synaptic.synaptic_current``. Gradient: ``d score / d V_t`` is 1 at the step ``t*`` of the maximum and
    0 elsewhere, so ``d score / d x_s = decay^(t* - s)`` for ``s <= t*`` and 0 after ``t*``.

    Run one step at a time it would score each step on its own, ``V_1 = x_t``: the online ``train.temporal_grad``
    modes (sltt, ottt, eprop), whose loss ``(1/T) sum_t loss(x_t)`` is not that of ``max_t V_t``, refuse it.
    """

    prices_own_updates = True  # non-spiking output neurons whose updates are priced (layers.activity_recorder)

    def __init__(self, decay: float = 0.9) -> None:
        super().__init__()
        check_readout_decay(decay, "MaxMembraneReadout")
        self.decay = decay

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per output neuron and step (``neurons.update_cost``): ``V_t = decay V_{t-1} + x_t`` and the
        comparison with the running maximum."""
        return plus(kept_sum_ops(self.decay), (0, 1))

    def membrane(self, x: torch.Tensor) -> torch.Tensor:
        """The membrane trace ``V [T, B, K]`` of currents ``x [T, B, K]``."""
        return synaptic_current(x, self.decay)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, K] -> max_t V_t [B, K]`` (NaN for T = 0, as the mean of the other readouts; an integer ``x`` is
        read as the default float dtype)."""
        x = _floating(x)
        if x.shape[0] == 0:
            return x.sum(dim=0) * torch.nan
        return self.membrane(x).max(dim=0).values  # [T, B, K] -> [B, K]; ties: the gradient goes to one step

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """Refused: the maximum over T is no mean of per-step scores (no per-step loss such as TET)."""
        raise ConfigError("the max-membrane readout scores max_t V_t, not a mean over steps: per-step losses (tet, "
                          "mse_count) need method.readout: rate or membrane")

    def extra_repr(self) -> str:
        return f"decay={self.decay:g}"
