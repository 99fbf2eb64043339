"""TTFS layer modules: spike times in, spike times out (``[B, ...]``, ``+inf`` = no spike).

Every neuron is a non-leaky IF neuron that fires once (``deepspike.ttfs.dense``): a layer computes the
closed-form first spike times of its neurons from its input spike times, so a TTFS layer needs no
activation after it. The bias is zhou2021's "bias input spike at t = 0" (Table 1), with a trainable weight.

Classes carry ``is_ttfs_layer = True`` so the activity recorder (``deepspike.layers.activity_recorder``)
can find them by forward hooks; their outputs are spike times. ``ttfs_role`` tells what the outputs are:
``"neurons"`` (trainable conv/dense neurons, counted by the sparsity measures), ``"pool"`` or ``"norm"``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepspike.core.options import is_float32, is_whole
from deepspike.core.spike_tally import ReportsSpikes
from deepspike.ttfs import _validate as v
from deepspike.ttfs.conv import spike_times_conv2d
from deepspike.ttfs.dense import spike_times
from deepspike.ttfs.pooling import avg_pool_times, max_pool_times


def uniform_init_(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int, scale: float) -> None:
    """zhou2021's initialisation ``w ~ U(0, scale / fan_in)`` (scale 8 in the original code), bias too.

    With ``scale > 2 theta`` the expected weight sum ``scale / 2`` exceeds the threshold, so a fresh
    neuron fires once most of its inputs have arrived.
    """
    with torch.no_grad():
        weight.uniform_(0.0, scale / fan_in)
        if bias is not None:
            bias.uniform_(0.0, scale / fan_in)


class _TTFSNeurons(ReportsSpikes, nn.Module):
    """Shared parts of the dense and conv layers: neuron parameters, bias spike, initialisation."""

    is_ttfs_layer = True
    ttfs_role = "neurons"

    def _setup(self, weight_shape, n_out, bias, kernel, theta, tau, backend, init_scale):
        v.check_neuron_params(kernel, theta, tau)
        v.check_backend(backend)
        if not all(is_whole(n, 1) for n in weight_shape):
            raise v.ConfigError(f"{type(self).__name__}: sizes must be whole numbers >= 1, got {weight_shape}")
        if not (is_float32(init_scale) and init_scale > 0):
            raise v.ConfigError(f"{type(self).__name__}: init_scale must be a finite number > 0, got {init_scale!r}")
        self.kernel, self.theta, self.tau, self.backend = kernel, float(theta), float(tau), backend
        self.weight = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.empty(n_out)) if bias else None
        self.fan_in = math.prod(weight_shape[1:]) + (1 if bias else 0)
        uniform_init_(self.weight, self.bias, self.fan_in, init_scale)

    def weight_sums(self) -> torch.Tensor:
        """Per output neuron (channel) ``sum_i w_ji`` over all inputs including the bias spike: ``[M]``."""
        sums = self.weight.reshape(self.weight.shape[0], -1).sum(1)  # [M, fan_in] -> [M]
        return sums if self.bias is None else sums + self.bias

    def weights(self) -> list[torch.Tensor]:
        """The trainable synaptic weights (for the L2 cost): weight and bias."""
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def _reported(self, t_out: torch.Tensor) -> torch.Tensor:
        """``t_out``, its spikes (finite times) counted for an active ``core.spike_tally``."""
        if self.tally is not None:
            self.report_spikes(torch.isfinite(t_out).sum())
        return t_out

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, bias={self.bias is not None}, kernel={self.kernel}, " \
               f"theta={self.theta}, tau={self.tau}"


class TTFSLinear(_TTFSNeurons):
    """Dense TTFS layer ``t_in [B, N] -> t_out [B, M]`` by ``spike_times`` (zhou2021 eq. 4, zhang2021 eq. 11).

    exp: ``exp(t_j/tau) = sum_C w_ji exp(t_i/tau) / (sum_C w_ji - theta)``;
    relpsp: ``t_j = (theta + sum_C w_ji t_i) / sum_C w_ji``; C = causal set of the first crossing.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, kernel: str = "exp",
                 theta: float = 1.0, tau: float = 1.0, backend: str = "auto", init_scale: float = 8.0):
        super().__init__()
        self._setup((out_features, in_features), out_features, bias, kernel, theta, tau, backend, init_scale)

    def forward(self, t_in: torch.Tensor) -> torch.Tensor:
        return self._reported(spike_times(t_in, self.weight, self.bias, self.kernel, self.theta, self.tau,
                                          self.backend))


class TTFSConv2d(_TTFSNeurons):
    """Convolutional TTFS layer: spike times ``[B, C, H, W] -> [B, O, H', W']``, ``H' = (H + 2p - k) // s + 1``.

    Each output neuron is ``TTFSLinear``'s over its receptive field (zhou2021 eq. 4, zhang2021 eq. 11), e.g.
    exp: ``exp(t_j/tau) = sum_C w_ji exp(t_i/tau) / (sum_C w_ji - theta)``; zero padding = no spike (+inf).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, kernel: str = "exp", theta: float = 1.0,
                 tau: float = 1.0, backend: str = "auto", init_scale: float = 8.0):
        super().__init__()
        self.stride, self.padding = stride, padding
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self._setup(shape, out_channels, bias, kernel, theta, tau, backend, init_scale)

    def forward(self, t_in: torch.Tensor) -> torch.Tensor:
        return self._reported(spike_times_conv2d(t_in, self.weight, self.bias, self.stride, self.padding,
                                                 self.kernel, self.theta, self.tau, self.backend))


class TTFSMaxPool2d(nn.Module):
    """zhou2021 max-pooling: the EARLIEST spike of each window, ``t_out = min_window t`` (not max over z);
    spike times ``[B, C, H, W] -> [B, C, H', W']``, ``H' = (H + 2p - k) // s + 1``.

    ``padding`` is "no spike" (+inf) around the map; see ``deepspike.ttfs.pooling.max_pool_times``.
    """

    is_ttfs_layer = True
    ttfs_role = "pool"

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride  # 0 is an error (pooling), not the default

    def forward(self, t_in: torch.Tensor) -> torch.Tensor:
        return max_pool_times(t_in, self.kernel_size, self.stride, self.padding)


class TTFSAvgPool2d(ReportsSpikes, nn.Module):
    """zhou2021 average pooling: a TTFS neuron per window of ``N`` inputs with fixed weights ``theta/(N-1)``;
    spike times ``[B, C, H, W] -> [B, C, H', W']``, ``H' = (H + 2p - k) // s + 1``.

    exp kernel: ``t_out = tau * logsumexp(t_window / tau)`` (fires after the whole window, silent if any
    window input is silent; padding is silent inputs); see ``deepspike.ttfs.pooling.avg_pool_times``.
    """

    is_ttfs_layer = True
    ttfs_role = "pool"

    def __init__(self, kernel_size: int, stride: int | None = None, kernel: str = "exp", theta: float = 1.0,
                 tau: float = 1.0, backend: str = "auto", padding: int = 0):
        super().__init__()
        v.check_neuron_params(kernel, theta, tau)
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride  # 0 is an error (pooling), not the default
        self.kernel, self.theta, self.tau, self.backend = kernel, float(theta), float(tau), backend

    def forward(self, t_in: torch.Tensor) -> torch.Tensor:
        t_out = avg_pool_times(t_in, self.kernel_size, self.stride, self.padding, self.kernel, self.theta,
                               self.tau, self.backend)
        if self.tally is not None:  # the pooling neurons fire once each, like a layer's
            self.report_spikes(torch.isfinite(t_out).sum())
        return t_out


class TTFSDropout(nn.Module):
    """Dropout of spikes ``t [B, ...] -> [B, ...]``: in training each input spike is removed (``t = +inf``) with
    probability ``p``, ``t_out = t`` if ``U >= p`` else ``+inf`` (U ~ Uniform(0, 1)).

    No rescaling: a TTFS neuron has no rate to keep; at evaluation the module is the identity.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise v.ConfigError(f"TTFS dropout p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, t_in: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return t_in
        drop = torch.rand_like(t_in) < self.p
        return torch.where(drop, torch.full_like(t_in, math.inf), t_in)
