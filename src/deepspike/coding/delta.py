"""Delta modulation: analog time series -> ON/OFF spikes where the signal changes.

Two rules, both on a time-first series ``x [T, B, ...]`` and a threshold ``theta > 0``, with the reference before
the first step at 0 (so the first sample's own level makes spikes, and a constant signal stays silent after):

- ``step`` (snnTorch's ``spikegen.delta``): ``d_t = x_t - x_{t-1}``, ``s_t = 1[d_t >= theta] - 1[d_t <= -theta]``.
  A slow drift below ``theta`` per step is never seen.
- ``level`` (level crossing, the sigma-delta / up-down encoders of event audio front ends): a reference ``r``
  follows the signal in steps of ``theta``, ``s_t = 1[x_t - r_{t-1} >= theta] - 1[x_t - r_{t-1} <= -theta]``,
  ``r_t = r_{t-1} + theta s_t``; at most one spike per step, so ``|x_t - r_t| < theta`` holds again after a
  jump of k thresholds only k steps later. Slow drifts add up and cross.

With ``off_spikes=False`` the ``-1`` spikes are left out (the level rule still moves its reference down).
"""

from __future__ import annotations

import torch

from deepspike.coding.rate import check_floating
from deepspike.core.errors import ConfigError
from deepspike.core.options import is_finite
from deepspike.core.precision import at_least_float32

DELTA_MODES = ("step", "level")


def delta_modulation(x: torch.Tensor, threshold: float, off_spikes: bool = True, mode: str = "step") -> torch.Tensor:
    """ON/OFF spikes of ``x [T, B, ...]`` (module docstring): ``[T, B, ...]`` in ``{-1, 0, 1}``, ``x``'s dtype.

    ``x`` must be floating-point (``ConfigError`` otherwise): an unsigned difference wraps around (a fall from 5 to 3
    in uint8 is +254, an ON spike) and an integer dtype holds no -1 or a fractional threshold's reference. Both rules
    compare in float32 at least (a bfloat16 / float16 ``x`` is read exactly, and ``theta`` is not rounded to its
    dtype)."""
    check_floating(x, "delta_modulation")
    if x.dim() == 0:
        raise ConfigError("delta_modulation needs a time-first series [T, ...]; got a 0-d tensor")
    if mode not in DELTA_MODES:
        raise ConfigError(f"bad delta mode {mode!r}; valid: {', '.join(DELTA_MODES)}")
    if not (is_finite(threshold) and threshold > 0):
        raise ConfigError(f"delta threshold must be > 0 and finite, got {threshold!r}")
    if not isinstance(off_spikes, bool):
        raise ConfigError(f"delta off_spikes must be true or false, got {off_spikes!r}")
    if mode == "step":  # in float32 at least: in bfloat16 / float16 the threshold itself was rounded (2.99 to 2.984)
        wide = x.to(at_least_float32(x.dtype))  # and a change of 2.988 < 2.99 made a spike
        d = torch.diff(wide, dim=0, prepend=torch.zeros_like(wide[:1]))  # [T, B, ...]
        up, down = d >= threshold, d <= -threshold
    else:
        up, down = _level_crossings(x, threshold)
    s = up.to(x.dtype)
    return s - down.to(x.dtype) if off_spikes else s


def _level_crossings(x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The level rule's up and down crossings ``[T, B, ...]`` (bool), stepping the reference through T.

    The reference is kept as ``r_t = theta n_t`` with ``n_t`` the net count of ON spikes ``[B, ...]`` (whole numbers,
    float32 at least): a running sum of rounded ``r + theta`` drifted from ``theta n_t``, what a decoder rebuilds."""
    count = x.new_zeros(x.shape[1:], dtype=at_least_float32(x.dtype))  # n_0 = 0
    up, down = torch.empty_like(x, dtype=torch.bool), torch.empty_like(x, dtype=torch.bool)
    for t in range(x.shape[0]):
        d = x[t] - threshold * count
        up[t], down[t] = d >= threshold, d <= -threshold
        count = count + up[t].to(count.dtype) - down[t].to(count.dtype)
    return up, down
