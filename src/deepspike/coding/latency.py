"""Time-to-first-spike (latency) coding: one spike per input, earlier for stronger input."""

from __future__ import annotations

import math

import torch

from deepspike.coding.rate import check_intensities, check_steps
from deepspike.coding.rng import GeneratorLike, as_generator
from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import is_finite, is_float32
from deepspike.core.precision import at_least_float32

TTFS_MODES = ("1-p", "p")
ALPHA_LOW = torch.finfo(torch.float32).tiny
"""The smallest latency scale ``alpha``: float32's smallest normal number (a smaller one is 0 or subnormal in float32,
so every input time ``alpha (1 - p)`` is 0 or nearly: ``alpha=1e-300`` trained silently at chance)."""


def check_alpha(alpha: float, what: str) -> None:
    """``ConfigError`` unless the latency scale ``alpha`` (time of the latest input spike) is a finite number > 0 of
    float32's range, at least ``ALPHA_LOW`` (float32's smallest normal number)."""
    if not (is_float32(alpha) and alpha > 0):  # the times are float32 for float32 intensities
        raise ConfigError(f"{what} alpha={alpha!r} must be a finite number > 0")
    if alpha < ALPHA_LOW:
        raise ConfigError(f"{what} alpha={alpha!r} is below float32's smallest normal number {ALPHA_LOW:.4g}: every "
                          "input time alpha * (1 - p) would be 0 or subnormal in float32")


def check_jitter(sigma: float, what: str) -> None:
    """``ConfigError`` unless the spike-time jitter ``sigma`` (standard deviation) is a finite number >= 0."""
    if not (is_float32(sigma) and sigma >= 0):
        raise ConfigError(f"{what} jitter sigma={sigma!r} must be a finite number >= 0")


def jitter_times(t: torch.Tensor, sigma: float, generator: GeneratorLike = None) -> torch.Tensor:
    """Spike times ``t [B, ...]`` moved by Gaussian noise: ``max(t + N(0, sigma^2), 0)`` (no spike before the start).

    zhang2021 V-B (sigma 0.14) and zhou2021's "noisy input". ``+inf`` (no spike) stays ``+inf``.
    """
    gen = as_generator(generator, t.device)
    noise = torch.randn(t.shape, generator=gen, device=t.device, dtype=t.dtype)
    return (t + sigma * noise).clamp_min(0.0)


def ttfs_latency(
    p: torch.Tensor,
    alpha: float = 1.0,
    mode: str = "1-p",
    jitter_sigma: float = 0.0,
    generator: GeneratorLike = None,
    silent_zero: bool = False,
) -> torch.Tensor:
    """Spike times of intensities ``p [B, ...]`` in [0, 1]; returns times ``[B, ...]`` in ``p``'s dtype promoted with
    float32 (a float16 time overflowed to ``+inf``, "no spike", past 65504: ``alpha=1e5``, ``p=0`` fired never;
    bfloat16 rounded ``1000 (1 - 0.3)`` to 700 instead of 699.2 for the stored ``p``).

    mode "1-p": ``t = alpha * (1 - p)`` (zhou2021 MNIST, zhang2021: brighter fires earlier);
    mode "p":   ``t = alpha * p`` (zhou2021 CIFAR-10).
    Zero-intensity inputs: by default they fire like any other value (at ``t = alpha`` in mode "1-p",
    ``t = 0`` in mode "p"), as both papers' formulas do. ``silent_zero=True`` makes every ``p == 0`` input
    never fire (``t = +inf``).
    Jitter: ``t += N(0, jitter_sigma^2)`` on finite times, then clamped at 0 (no spike before the start;
    ``jitter_times``).
    """
    if mode not in TTFS_MODES:
        raise unknown_choice("ttfs mode", mode, TTFS_MODES)
    check_alpha(alpha, "ttfs")
    check_jitter(jitter_sigma, "ttfs")
    check_intensities(p, "ttfs_latency")
    q = p.to(at_least_float32(p.dtype))
    t = alpha * (1 - q) if mode == "1-p" else alpha * q
    if jitter_sigma > 0:
        t = jitter_times(t, jitter_sigma, generator)
    if silent_zero:
        t = torch.where(p == 0, torch.full_like(t, math.inf), t)
    return t


def check_time_step(dt: float) -> None:
    """``ConfigError`` unless the time step ``dt`` between steps ``n`` and ``n + 1`` is a finite number > 0."""
    if not (is_finite(dt) and dt > 0):  # dt=True passed as a step of 1, dt="0.5" raised TypeError
        raise ConfigError(f"time step dt={dt} must be a finite number > 0")


def _edge(n: torch.Tensor, dt: float, dtype: torch.dtype) -> torch.Tensor:
    """The start ``n dt`` of step ``n`` (``n`` float ``[B, ...]``) rounded to ``dtype``, then in ``n``'s dtype."""
    return (n * dt).to(dtype).to(n.dtype)


def latency_spike_train(times: torch.Tensor, T: int, dt: float = 1.0) -> torch.Tensor:
    """Time-stepped version of spike times: ``s[n] = 1`` at step ``n = floor(t / dt)``, else 0.

    The step edges are the times ``n dt`` as ``first_spike_time`` gives them, rounded to ``times``' dtype: step ``n``
    holds ``n dt <= t < (n + 1) dt`` there (where two edges round to one time, the lower step takes it), so
    ``latency_spike_train(first_spike_time(s, dt), T, dt)`` gives ``s [T, B, K]`` back for a single spike per neuron.

    times: ``[B, ...]`` (>= 0, not NaN; ``+inf`` = no spike) -> ``[T, B, ...]`` in ``times``' dtype. A time at or
    after ``T * dt`` falls outside the window and gives no spike. The step numbers are counted in float32 at least
    (bfloat16 holds whole numbers exactly only up to 256, float16 up to 2048: one time would match several steps).
    """
    T = check_steps(T)
    check_time_step(dt)
    if times.numel() and not times.min() >= 0:  # (a NaN minimum fails too)
        raise ConfigError(f"spike times must be >= 0; got minimum {times.min().item():g}")
    counted = times.to(at_least_float32(times.dtype))
    finite = torch.isfinite(counted)
    rounded = times.dtype if times.is_floating_point() else counted.dtype
    step = torch.floor(counted / dt)  # one off where t / dt rounds below a whole number: (3 * 0.1) / 0.1 = 2.99..
    low, high = _edge(step, dt, rounded), _edge(step + 1, dt, rounded)
    step = step + ((high <= counted) & (high > low)).to(step.dtype) - (low > counted).to(step.dtype)
    step = torch.where(finite, step, torch.full_like(counted, -1.0))
    steps = torch.arange(T, device=times.device, dtype=counted.dtype)
    steps = steps.view(T, *([1] * times.dim()))  # [T] -> [T, 1, ...]
    return (steps == step.unsqueeze(0)).to(times.dtype)  # [T, 1, ...] vs [1, B, ...] -> [T, B, ...]
