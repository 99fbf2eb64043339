"""Quantised membrane state: training for chips whose membranes are few-bit integers.

The charged membrane ``h_t = k v_{t-1} + x_t`` is rounded to the nearest of ``L = 2^bits`` evenly spaced levels
before the neuron fires and resets (snnTorch's ``state_quant(uniform=True)`` and where its ``Leaky`` applies it)::

    levels = linspace(-th (1 + low), th (1 + high), L),   h_t <- levels[argmin_i |h_t - levels_i|]

so a membrane beyond the range is clamped to its end, and the levels move with the threshold ``th`` (folding the
threshold into the weights keeps them). ``low = 0, high = 0.2`` (snnTorch's defaults) spend the levels on
``[-th, 1.2 th]``.

The backward pass is the clipped straight-through estimator: ``dh_q / dh = 1`` inside the range, 0 where ``h``
was clamped. snnTorch passes the gradient everywhere; with its default range that trains badly here (a neuron
driven far above threshold sits at ``1.2 th``, inside the surrogate's window, and keeps receiving gradient
that cannot change its output): digits, scnn_digits, T = 4, 8 bits, 30 epochs, 35-37% test accuracy with the plain
estimator against 97-99% with float membranes (``benchmarks/RESULTS.md``, session 26).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import FLOAT32_MAX, is_finite, is_whole

MAX_STATE_BITS = 16


@dataclass(frozen=True)
class StateQuant:
    """``bits`` (1 to 16) levels exponent; ``low``, ``high`` (>= 0): how far the range reaches below ``-th`` and
    above ``th``, as fractions of ``th`` (module docstring)."""

    bits: int
    low: float = 0.0
    high: float = 0.2

    def __post_init__(self) -> None:
        if not is_whole(self.bits, 1, MAX_STATE_BITS):
            raise ConfigError(f"state_bits must be an integer from 1 to {MAX_STATE_BITS}, got {self.bits!r}")
        for name in ("low", "high"):
            value = getattr(self, name)
            if not is_finite(value) or value < 0:
                raise ConfigError(f"state_{name} must be a finite number >= 0, got {value!r}")
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))

    def check_fits(self, threshold: float) -> None:
        """A one-line ``ConfigError`` when the range ``[-th (1 + low), th (1 + high)]`` of a layer of threshold
        ``threshold`` reaches past float32's largest number (its levels would be infinite)."""
        reach = abs(float(threshold)) * (1.0 + max(self.low, self.high))
        if not reach <= FLOAT32_MAX:
            raise ConfigError(f"state_low={self.low:g} / state_high={self.high:g} with threshold {float(threshold):g} "
                              f"reach {reach:g}, past float32's largest number {FLOAT32_MAX:g}")

    def levels(self, threshold: float, device: torch.device | str = "cpu") -> torch.Tensor:
        """The ``2^bits`` levels ``[L]`` (float32, as snnTorch's ``linspace``) for a layer of threshold
        ``threshold`` (``check_fits``); one table per setting, threshold and device, kept (at most 64 KiB ... 256 KiB
        each)."""
        self.check_fits(threshold)
        return _level_table(self.bits, self.low, self.high, float(threshold), torch.device(device))

    def __call__(self, h: torch.Tensor, threshold: float) -> torch.Tensor:
        """``h`` (any shape, any floating dtype) on its nearest level, same shape and dtype; the gradient passed
        straight through where ``h`` lies in the levels' range, 0 where it was clamped."""
        return _NearestLevel.apply(h, self.levels(threshold, h.device))

    def describe(self) -> str:
        return f"{self.bits} bits on [-{1 + self.low:g} th, {1 + self.high:g} th]"


def refuse_state_quant(state_quant: StateQuant | None, neuron: str) -> None:
    """A one-line ``ConfigError`` when ``neuron`` (which runs its own update) is given a quantised membrane."""
    if state_quant is not None:
        raise ConfigError(f"{neuron} has no quantised membrane: state_quant is for the IF, LIF and synaptic LIF")


@functools.lru_cache(maxsize=64)
def _level_table(bits: int, low: float, high: float, threshold: float, device: torch.device) -> torch.Tensor:
    return torch.linspace(-threshold * (1 + low), threshold * (1 + high), 2**bits, dtype=torch.float32, device=device)


class _NearestLevel(torch.autograd.Function):
    """Forward: each entry of ``h`` replaced by its nearest level of the ascending, evenly spaced float32
    ``levels [L]``, ties to the lower level, as an argmin over ``|levels - h|`` in float32 picks (snnTorch's rule);
    NaN kept. Computed in float32 whatever ``h``'s dtype (bfloat16 cannot index 2^9 levels), the level then cast
    to ``h``'s dtype. Backward: the gradient where ``levels[0] <= h <= levels[-1]``, else 0."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        last = levels.numel() - 1  # >= 1
        h32 = h.float()
        ctx.save_for_backward((h32 >= levels[0]) & (h32 <= levels[last]))
        h32 = h32.nan_to_num(0.0).clamp(levels[0], levels[last])  # beyond the range (inf too): its end
        step = (float(levels[last]) - float(levels[0])) / last
        position = (h32.double() - float(levels[0])) / step  # float64: exact enough for 2^16 levels
        below = position.floor().clamp_(0, last - 1).long()  # the pair (below, below + 1) around h
        lower, upper = levels[below], levels[below + 1]
        nearest = torch.where((upper - h32).abs() < (h32 - lower).abs(), upper, lower)  # a tie goes down
        return torch.where(torch.isnan(h), h, nearest.to(h.dtype))  # NaN stays NaN (neurons.dynamics' policy)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (inside,) = ctx.saved_tensors
        return grad * inside, None
