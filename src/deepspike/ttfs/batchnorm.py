"""Batch normalisation in the time domain (zhou2021 eq. 6) and its folded inference form.

In the z domain ``z = exp(t/tau)`` (smaller z = earlier = stronger) batch-norm is
``z' = gamma/sigma (z - mu) + beta = a z + c`` per channel, with ``a = gamma/sigma`` and
``c = beta - gamma mu / sigma``. zhou2021 rewrites it as

    ``exp(t'/tau) = exp((t + tau log a)/tau) + exp(tau log c / tau)``        (eq. 6)

i.e. a neuron with two inputs of weight theta: the input spike delayed by ``d = tau log a`` and a bias
spike at ``t_b = tau log c`` (with weights theta both must arrive and ``z' = z_a + z_b``). ``a > 0`` is
kept by using ``|gamma|``; ``c > 0`` cannot be forced during training (mu is a batch statistic), so a
channel with ``c <= 0`` folds into an inhibitory bias (``sign = -1``): still ``z' = a z + c``.

Conventions here: statistics use only the spiking entries (silent inputs, +inf, stay silent); ``z'`` is
clamped at ``exp(t_min/tau)`` (default ``t_min = 0``: nothing fires before the input window opens), so
``t' = tau log max(a z + c, exp(t_min/tau))``. In training ``mu, sigma^2`` are the batch's (biased variance
for the output, unbiased for the running estimate, as ``nn.BatchNorm2d``; a channel without spiking entries in
a batch leaves its running mean, one with fewer than two its running variance, as they were); in evaluation the
running estimates. ``fold()`` returns a ``TTFSDelayBias`` that gives identical evaluation outputs.
A NaN or -inf input time, and a spike too late for the z domain (``exp(t/tau)``, in training its square, beyond
the dtype: ``t/tau`` above about 44 in float32 training, 88 in evaluation), raise ``ConfigError``.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from deepspike.coding.decoders import check_time_values
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.core.precision import LOW_PRECISION


def _z(t: torch.Tensor, tau: float) -> torch.Tensor:
    """``exp(t/tau)`` on spiking entries, 0 on silent ones (they are masked everywhere)."""
    return torch.exp(torch.where(torch.isfinite(t), t, torch.zeros_like(t)) / tau)


def _to_time(z: torch.Tensor, silent: torch.Tensor, tau: float, t_min: float) -> torch.Tensor:
    """``t = tau log max(z, exp(t_min/tau))``; silent entries stay +inf."""
    t = tau * torch.log(torch.clamp_min(z, math.exp(t_min / tau)))
    return torch.where(silent, torch.full_like(t, math.inf), t)


def _check_settings(where: str, tau: float, t_min: float, eps: float = 0.0, momentum: float = 0.0) -> None:
    """``ConfigError`` unless ``tau`` is a finite number > 0, ``t_min`` finite, ``eps`` finite and >= 0 and
    ``momentum`` in [0, 1] (a tau of 0 divided by zero, a NaN one or a negative eps gave NaN times)."""
    for ok, name, value, expected in ((is_finite(tau) and tau > 0, "tau", tau, "a finite number > 0"),
                                      (is_finite(t_min), "t_min", t_min, "a finite number"),
                                      (is_finite(eps) and eps >= 0, "eps", eps, "a finite number >= 0"),
                                      (is_finite(momentum) and 0 <= momentum <= 1, "momentum", momentum, "in [0, 1]")):
        if not ok:
            raise ConfigError(f"{where}: {name} must be {expected}, got {value!r}")


def _check_range(z_out: torch.Tensor, t_in: torch.Tensor, silent: torch.Tensor, tau: float, where: str,
                 var: torch.Tensor | None = None) -> None:
    """``ConfigError`` when ``z' = a z + c`` [B, C, ...] is NaN or inf at a spiking entry or the variance ``var`` [C]
    of ``z`` is not finite: ``exp(t/tau)``, or in training ``(z - mu)^2 ~ exp(2 t/tau)``, overflowed the dtype,
    which turned a channel's times into NaN or all into ``tau log beta`` (``a = gamma / sqrt(inf) = 0``) in
    training, and the late spike into no spike in evaluation."""
    finite = torch.where(silent, torch.zeros_like(z_out), z_out).isfinite().all()
    if bool(finite if var is None else finite & var.isfinite().all()):
        return
    late = float(torch.where(silent, torch.full_like(t_in, -math.inf), t_in.detach()).max()) / tau
    raise ConfigError(f"{where}: a spike at t/tau = {late:.4g} overflows the z = exp(t/tau) batch statistics in "
                      f"{t_in.dtype}; use a larger tau (or float64 times)")


def _in_float32(forward):
    """``forward(self, t_in)`` with float16/bfloat16 times computed in float32 and returned in their own dtype, as in
    every TTFS layer (``deepspike.ttfs``): in half precision ``z = exp(t/tau)`` overflowed past ``t/tau ~ 11`` (a
    refusal of float32-sized times) and a bfloat16 batch mean could not update the float32 running mean (a
    RuntimeError from ``lerp``)."""

    @functools.wraps(forward)
    def wrapper(self, t_in: torch.Tensor) -> torch.Tensor:
        if t_in.dtype in LOW_PRECISION:
            return forward(self, t_in.float()).to(t_in.dtype)
        return forward(self, t_in)

    return wrapper


def _channel_view(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Per-channel vector [C] shaped to broadcast over [B, C, ...]."""
    return values.reshape(1, -1, *([1] * (x.dim() - 2)))  # [C] -> [1, C, 1, ...]


class TTFSBatchNorm(nn.Module):
    """zhou2021 eq. 6 batch-norm on spike times ``[B, C]`` or ``[B, C, H, W]`` (channels on dim 1).

    ``t' = tau log max(|gamma| (z - mu)/sqrt(var + eps) + beta, exp(t_min/tau))``, ``z = exp(t/tau)``.
    Trainable ``gamma`` (init 1) and ``beta`` (init 1, so a fresh layer keeps z' around its mean, > 0).
    """

    is_ttfs_layer = True
    ttfs_role = "norm"

    def __init__(self, channels: int, tau: float = 1.0, eps: float = 1e-5, momentum: float = 0.1,
                 t_min: float = 0.0):
        super().__init__()
        _check_settings("TTFSBatchNorm", tau, t_min, eps, momentum)
        self.tau, self.eps, self.momentum, self.t_min = float(tau), float(eps), float(momentum), float(t_min)
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_mean", torch.ones(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def scale_offset(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``a = |gamma| / sqrt(var + eps)`` and ``c = beta - a mu``, both [C]."""
        a = self.gamma.abs() / torch.sqrt(var + self.eps)
        return a, self.beta - a * mean

    @_in_float32
    def forward(self, t_in: torch.Tensor) -> torch.Tensor:
        check_time_values(t_in, "TTFSBatchNorm")
        silent = torch.isinf(t_in)
        z = _z(t_in, self.tau)
        if self.training:
            dims = [0, *range(2, t_in.dim())]  # all but the channel axis
            spiking = (~silent).to(z.dtype)
            count = spiking.sum(dims)  # [C] spiking entries per channel
            n = count.clamp_min(1.0)
            mean = (z * spiking).sum(dims) / n
            var = (((z - _channel_view(z, mean)) ** 2) * spiking).sum(dims) / n
        else:
            mean, var = self.running_mean, self.running_var
        a, c = self.scale_offset(mean, var)
        z_out = _channel_view(z, a) * z + _channel_view(z, c)
        _check_range(z_out, t_in, silent, self.tau, "TTFSBatchNorm", var)  # before the running stats take it
        if self.training:
            self._update_running(mean.detach(), var.detach(), count)
        return _to_time(z_out, silent, self.tau, self.t_min)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor) -> None:
        """Move the running estimates ``momentum`` of the way to the batch's ``mean`` and unbiased variance
        ``var n / (n - 1)`` (all [C]), per channel only where the batch has statistics: a mean from ``n >= 1``
        spiking entries, a variance from ``n >= 2`` (a silent channel's batch mean and variance are no data)."""
        unbiased = var * count / (count - 1).clamp_min(1.0)
        for running, batch, least in ((self.running_mean, mean, 1), (self.running_var, unbiased, 2)):
            running.copy_(torch.where(count >= least, running.lerp(batch, self.momentum), running))

    @torch.no_grad()
    def fold(self) -> TTFSDelayBias:
        """Inference form (eq. 6): per channel delay ``tau log a``, bias spike ``tau log |c|``, sign(c)."""
        a, c = self.scale_offset(self.running_mean, self.running_var)
        delay = self.tau * torch.log(a)
        bias_time = self.tau * torch.log(c.abs().clamp_min(torch.finfo(c.dtype).tiny))
        return TTFSDelayBias(delay, bias_time, torch.sign(c), self.tau, self.t_min)


class TTFSDelayBias(nn.Module):
    """Folded time-domain batch-norm: ``exp(t'/tau) = exp((t + d)/tau) + s exp(t_b/tau)`` per channel.

    ``d`` [C]: synaptic delay; ``t_b`` [C]: bias spike time; ``s`` [C] in {+1, 0, -1}: +1 is zhou2021's
    two-input neuron with weights theta, -1 an inhibitory bias. Clamped at ``exp(t_min/tau)`` like
    ``TTFSBatchNorm``; silent inputs stay silent.
    """

    is_ttfs_layer = True
    ttfs_role = "norm"

    def __init__(self, delay: torch.Tensor, bias_time: torch.Tensor, sign: torch.Tensor, tau: float = 1.0,
                 t_min: float = 0.0):
        super().__init__()
        _check_settings("TTFSDelayBias", tau, t_min)
        self.tau, self.t_min = float(tau), float(t_min)
        self.register_buffer("delay", delay.clone())
        self.register_buffer("bias_time", bias_time.clone())
        self.register_buffer("sign", sign.clone())

    @_in_float32
    def forward(self, t_in: torch.Tensor) -> torch.Tensor:
        check_time_values(t_in, "TTFSDelayBias")
        silent = torch.isinf(t_in)
        t_delayed = torch.where(silent, torch.zeros_like(t_in), t_in + _channel_view(t_in, self.delay))
        bias = _channel_view(t_in, self.sign * torch.exp(self.bias_time / self.tau))
        z_out = torch.exp(t_delayed / self.tau) + bias
        _check_range(z_out, t_in, silent, self.tau, "TTFSDelayBias")
        return _to_time(z_out, silent, self.tau, self.t_min)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ``TTFSBatchNorm`` of ``model`` (in place) by its ``fold()``; returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, TTFSBatchNorm):
            setattr(model, name, child.fold())
        else:
            fold_batchnorm(child)
    return model
