"""Batch-norms of directly trained SNNs on ``[T, B, C, H, W]`` (or ``[T, B, F]``): BN, tdBN and TEBN.

All three normalise with per-channel statistics over every time step, sample and position (the whole
``[T*B]`` batch the convolution produced, one ``F.batch_norm`` call; running statistics for evaluation):

    x_hat = (x - mean_{T,B,H,W}) / sqrt(var_{T,B,H,W} + eps)

* ``bn``: ``y = gamma x_hat + beta`` (``nn.BatchNorm2d`` run on the ``[T*B]`` batch by ``TimeDistributed``).
* ``tdbn`` (Zheng et al., AAAI 2021, threshold-dependent BN): ``y = lambda (alpha V_th x_hat) + beta``; the
  normalised value is scaled to ``alpha V_th`` before the affine map. Built as a BatchNorm whose weight is
  parametrised as ``gamma = lambda alpha V_th`` (``torch.nn.utils.parametrize``; ``lambda`` is the trained
  parameter, starting at 1): every tool that reads ``bn.weight`` (folding, the time-invariant shortcut of
  ``TimeDistributed``) sees the effective scale.
* ``tebn`` (Duan et al., NeurIPS 2022, temporal effective BN): ``y_t = p_t (gamma x_hat_t + beta)`` with one
  trained scale ``p_t`` per time step (``[T]``, starting at 1) on the shared statistics. It needs all T steps
  in one call (not the online or segmented temporal-grad modes, not streaming, not another T in evaluation: each
  refused in one line) and cannot be folded into one weight.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_TINY, is_float32, is_whole
from deepspike.layers.time_distributed import TimeDistributed


def batch_norm(shape: tuple[int, ...]) -> nn.Module:
    """``nn.BatchNorm2d`` for a ``(C, H, W)`` output, ``nn.BatchNorm1d`` for ``(F,)``."""
    return nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])


class _Scaled(nn.Module):
    """The parametrisation ``gamma = scale * lambda`` of a batch-norm's weight."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def check_tdbn_scale(threshold: float, alpha: float) -> None:
    """``ConfigError`` unless ``threshold`` and ``alpha`` are finite numbers > 0 whose product ``alpha V_th`` (tdBN's
    scale of gamma) a float32 weight holds as a normal number: beyond 3.4e38 it is inf, below 1.18e-38 (``alpha =
    1e-320``) 0 or subnormal, which silenced every normed layer."""
    for name, value in (("threshold", threshold), ("alpha", alpha)):
        if not (is_float32(value) and value > 0):
            raise ConfigError(f"tdBN {name}={value!r} must be a finite number > 0")
    if not is_float32(alpha * threshold):
        raise ConfigError(f"tdBN scale alpha * threshold = {alpha * threshold:g} is beyond float32's range")
    if alpha * threshold < FLOAT32_TINY:
        raise ConfigError(f"tdBN scale alpha * threshold = {alpha * threshold:g} is below float32's smallest normal "
                          f"{FLOAT32_TINY:.4g}")


def threshold_dependent_batch_norm(shape: tuple[int, ...], threshold: float, alpha: float = 1.0) -> nn.Module:
    """tdBN for a per-sample ``shape``: a batch-norm with ``gamma = lambda alpha V_th`` (module docstring).
    ``threshold`` and ``alpha``: as ``check_tdbn_scale`` takes them, else ``ConfigError``."""
    check_tdbn_scale(threshold, alpha)
    bn = batch_norm(shape)
    parametrize.register_parametrization(bn, "weight", _Scaled(alpha * threshold))
    return bn


class TemporalEffectiveBatchNorm(nn.Module):
    """TEBN: ``y [T, B, C, ...] = p[t] * BN_{T,B,H,W}(x)[t]`` with a trained ``p`` ``[T]`` (module docstring)."""

    def __init__(self, shape: tuple[int, ...], timesteps: int) -> None:
        super().__init__()
        if not is_whole(timesteps, 1):
            raise ConfigError(f"TEBN timesteps={timesteps!r} must be a whole number >= 1 (one scale per step)")
        self.norm = TimeDistributed(batch_norm(shape))
        self.step_scale = nn.Parameter(torch.ones(timesteps))

    def pieces_refusal(self) -> str:
        """Why TEBN cannot run its steps in pieces (``methods.rate_network.check_runs_in_pieces`` asks: streaming,
        the temporal-grad modes refuse it before anything runs): step ``t``'s scale is ``p[t]``, so a call must hold
        all T steps."""
        return (f"TEBN (method.norm=tebn) scales each of its T = {self.step_scale.shape[0]} steps by its own p_t and "
                "runs all of them in one call, not in pieces")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.step_scale.shape[0]
        if x.shape[0] != steps:
            raise ConfigError(f"TEBN (method.norm=tebn) has one scale per step for T = {steps}, got {x.shape[0]} "
                              "steps in one call: use train.temporal_grad=bptt and eval_timesteps = timesteps")
        y = self.norm(x)  # [T, B, C, ...]
        return y * self.step_scale.view(steps, *([1] * (y.dim() - 1)))
