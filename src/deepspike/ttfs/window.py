"""Windowed ReL-PSP neurons: a single-spike TTFS layer that is the exact image of a ReLU layer.

After Stanojevic et al. (Nat. Commun. 15:6793, 2024); our derivation and conventions. Layer ``n`` owns the
time window ``[t_min(n), t_max(n)]`` of length ``T_n``, with ``t_min(n) = t_max(n - 1)``. A value
``x >= 0`` of layer ``n`` is coded by one spike at ``t = t_max(n) - x`` (``0 < x <= T_n``); ``x = 0`` is
coded by no spike at all, which is what keeps the spike count low.

Neuron ``j`` of layer ``n`` is a non-leaky integrator with linear PSPs:

* while layer ``n - 1`` fires (``t < t_min(n)``), each input spike at ``t_i`` adds the current ``w_ji``
  (``dV/dt = sum_{t_i <= t} w_ji``); the bias ``b_j`` arrives as a spike at ``t_min(n - 1)`` of weight
  ``b_j / T_{n-1}``;
* at ``t_min(n)`` the input currents switch off and a ramp current ``alpha`` switches on, the same for every
  neuron; the neuron may fire only inside its window, once, when ``V`` reaches ``theta_n = alpha T_n``.

So ``V(t_min(n)) = sum_i w_ji (t_min(n) - t_i) + b_j = sum_i w_ji x_i + b_j = a_j`` (silent inputs add 0,
exactly as a value 0 should), and ``V(t) = a_j + alpha (t - t_min(n))`` in the window. The spike comes at

    tau_j = t_j - t_min(n) = T_n - a_j / alpha        (0 < a_j < alpha T_n)
    tau_j = 0                                          (a_j >= alpha T_n: saturated, fires at once)
    no spike                                           (a_j <= 0; a_j = 0 would fire exactly at t_max)

and the value it codes is ``x_j = T_n - tau_j = clip(ReLU(a_j) / alpha, 0, T_n)``: the ReLU layer, exact
until the window clips. Spike times are handled as offsets ``tau`` inside the window (``[B, ...]``,
``+inf`` = no spike), which keeps their precision independent of how late the window is.
"""

from __future__ import annotations

import math

import torch


def window_offsets(potential: torch.Tensor, window: float | torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Spike offsets ``tau`` in ``[0, T]`` of windowed ReL-PSP neurons with potentials ``a`` at the window start.

    ``tau = T - clip(a / alpha, 0, T)`` where ``a > 0``, ``+inf`` where ``a <= 0`` (module docstring), NaN where
    ``a`` is NaN (as the values ``clip(a / alpha, 0, T)`` the layers pass on; not taken for "no spike").
    Args:
        potential: ``a`` ``[B, ...]``, the membrane potential at ``t_min`` (the ANN's pre-activation).
        window: ``T`` (a float or a tensor broadcastable to ``potential``, e.g. per channel), ``> 0``.
        alpha: the ramp slope (the threshold is ``alpha T``).
    Returns:
        ``[B, ...]`` offsets, differentiable: ``d tau / d a = -1 / alpha`` inside the window, 0 when clipped.
    """
    drive = torch.minimum(potential / alpha, torch.as_tensor(window, dtype=potential.dtype, device=potential.device))
    return torch.where(potential <= 0, torch.full_like(potential, math.inf), window - drive)  # NaN stays NaN


def decode_offsets(offsets: torch.Tensor, window: float | torch.Tensor) -> torch.Tensor:
    """The values the spikes code: ``x = T - tau`` for a spike, ``0`` for none (``tau = +inf``), NaN for a NaN
    offset (``[B, ...]``)."""
    silent = torch.isposinf(offsets)
    return torch.where(silent, 0.0, window - torch.where(silent, torch.zeros_like(offsets), offsets))


def encode_values(values: torch.Tensor, window: float) -> torch.Tensor:
    """Offsets of the spikes that code ``values >= 0`` in a window of length ``T`` (the input layer):
    ``tau = T - min(x, T)`` for ``x > 0``, ``+inf`` for ``x = 0``; ``[B, ...]`` -> ``[B, ...]``."""
    return window_offsets(values, window, 1.0)
