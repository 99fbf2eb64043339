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

from dataclasses import dataclass

import torch

from deepspike.core.errors import ConfigError

MAX_STATE_BITS = 24


@dataclass(frozen=True)
class StateQuant:
    """``bits`` (1 to 24) levels exponent; ``low``, ``high`` (>= 0): how far the range reaches below ``-th`` and
    above ``th``, as fractions of ``th`` (module docstring)."""

    bits: int
    low: float = 0.0
    high: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_STATE_BITS:
            raise ConfigError(f"state_bits must be an integer from 1 to {MAX_STATE_BITS}, got {self.bits!r}")
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ConfigError(f"state_{name} must be a finite number >= 0, got {value!r}")
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))

    def levels(self, threshold: float, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """The ``2^bits`` levels ``[L]`` for a layer of threshold ``threshold``."""
        return torch.linspace(-threshold * (1 + self.low), threshold * (1 + self.high), 2**self.bits, dtype=dtype,
                              device=device)

    def __call__(self, h: torch.Tensor, threshold: float) -> torch.Tensor:
        """``h`` (any shape) on its nearest level, same shape and dtype; the gradient passed straight through where
        ``h`` lies in the levels' range, 0 where it was clamped."""
        return _NearestLevel.apply(h, self.levels(threshold, h.dtype, h.device))

    def describe(self) -> str:
        return f"{self.bits} bits on [-{1 + self.low:g} th, {1 + self.high:g} th]"


def refuse_state_quant(state_quant: StateQuant | None, neuron: str) -> None:
    """A one-line ``ConfigError`` when ``neuron`` (which runs its own update) is given a quantised membrane."""
    if state_quant is not None:
        raise ConfigError(f"{neuron} has no quantised membrane: state_quant is for the IF, LIF and synaptic LIF")


class _NearestLevel(torch.autograd.Function):
    """Forward: each entry of ``h`` replaced by its nearest level of the ascending, evenly spaced ``levels [L]``
    (ties to the lower level; NaN kept); backward: the gradient where ``levels[0] <= h <= levels[-1]``, else 0."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        last = levels.numel() - 1  # >= 1
        step = (levels[last] - levels[0]) / last
        position = (h.nan_to_num(0.0) - levels[0]) / step  # inf -> the float maximum, clamped below
        index = torch.ceil(position - 0.5).clamp_(0, last).long()  # nearest; a tie goes down
        ctx.save_for_backward((h >= levels[0]) & (h <= levels[last]))
        return torch.where(torch.isnan(h), h, levels[index])  # NaN stays NaN (neurons.dynamics' policy)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (inside,) = ctx.saved_tensors
        return grad * inside, None
