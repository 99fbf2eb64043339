"""Spike function: Heaviside step forward, a smooth surrogate derivative backward.

Forward (tie convention: a neuron fires when its membrane reaches the threshold)::

    s = H(x) = 1 if x >= 0 else 0,        x = v - threshold      (NaN if x is NaN)

This is wu2019's written step function (``f(x) = 0`` for ``x < 0``, otherwise 1). wu2019's code and
lee2020's text use ``v > threshold`` instead; the two differ only on the measure-zero set ``v == threshold``.
A NaN membrane gives a NaN spike rather than a silent 0, so that it reaches the output (``neurons.dynamics``).

Backward: ``ds/dx`` is replaced by ``h(x)``, chosen by name:

==============  ===========  ==================================================  =======
name            parameter    h(x)                                                default
==============  ===========  ==================================================  =======
rectangular     a (width)    ``(1/a) * 1[|x| < a/2]``  (wu2019 eq. 14)            a = 1
sigmoid         alpha        ``alpha * sig(alpha x) * (1 - sig(alpha x))``        alpha = 4
fast_sigmoid    k (slope)    ``1 / (1 + k|x|)^2``  (SuperSpike)                   k = 25
arctan          alpha        ``(alpha/2) / (1 + (pi/2 * alpha * x)^2)``           alpha = 2
==============  ===========  ==================================================  =======

``rectangular``, ``sigmoid`` and ``arctan`` integrate to 1 over the real line (they are derivatives of
smoothed steps); ``fast_sigmoid`` peaks at 1 and integrates to ``2/k``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from deepspike.core.errors import ConfigError, unknown_choice

Derivative = Callable[..., torch.Tensor]


def _rectangular(x: torch.Tensor, a: float) -> torch.Tensor:
    return (x.abs() < a / 2).to(x.dtype) / a


def _sigmoid(x: torch.Tensor, alpha: float) -> torch.Tensor:
    sig = torch.sigmoid(alpha * x)
    return alpha * sig * (1 - sig)


def _fast_sigmoid(x: torch.Tensor, k: float) -> torch.Tensor:
    return 1.0 / (1.0 + k * x.abs()) ** 2


def _arctan(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


# name -> (derivative h(x, **params), default params); every parameter must be > 0.
_SURROGATES: dict[str, tuple[Derivative, dict[str, float]]] = {
    "rectangular": (_rectangular, {"a": 1.0}),
    "sigmoid": (_sigmoid, {"alpha": 4.0}),
    "fast_sigmoid": (_fast_sigmoid, {"k": 25.0}),
    "arctan": (_arctan, {"alpha": 2.0}),
}


def heaviside(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``H(x)``: 1.0 where ``x >= 0``, 0.0 where ``x < 0``, NaN where ``x`` is NaN; ``x``'s shape and dtype.

    Computed as ``floor(clamp(x, -1, 0)) + 1`` (clamp and floor keep NaN; as fast as ``(x >= 0).to(dtype)``).
    ``out``: the tensor to write into (``x`` itself is allowed).
    """
    return torch.clamp(x, -1.0, 0.0, out=out).floor_().add_(1.0)


class _HeavisideSurrogate(torch.autograd.Function):
    """``s = H(x)`` (``heaviside``) forward; ``grad_x = grad_s * h(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


class Surrogate:
    """A spike function with a named surrogate derivative; call it on ``x = v - threshold`` (any shape).

    ``surrogate(x)`` returns spikes of ``x``'s shape and dtype (0.0 / 1.0); ``surrogate.derivative(x)``
    returns ``h(x)``, the value the backward pass uses for ``ds/dx``.
    """

    def __init__(self, name: str, **params: float) -> None:
        if name not in _SURROGATES:
            raise unknown_choice("surrogate", name, _SURROGATES)
        fn, defaults = _SURROGATES[name]
        unknown = set(params) - set(defaults)
        if unknown:
            bad = sorted(unknown)[0]
            raise ConfigError(
                f"unknown parameter {bad!r} for surrogate {name!r}; valid: {', '.join(defaults)}"
            )
        merged = {**defaults, **{k: float(v) for k, v in params.items()}}
        for key, value in merged.items():
            if not value > 0 or math.isinf(value):
                raise ConfigError(f"surrogate {name!r} parameter {key}={value} must be a finite number > 0")
        self.name = name
        self.params = merged
        self._fn = fn

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """``h(x)``, the surrogate of ``dH/dx``; same shape as ``x``."""
        return self._fn(x, **self.params)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``H(x) = 1[x >= 0]`` (NaN for NaN) with ``h(x)`` as its gradient; same shape as ``x``."""
        return _HeavisideSurrogate.apply(x, self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Surrogate) and (self.name, self.params) == (other.name, other.params)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))


def get_surrogate(name: str, **params: float) -> Surrogate:
    """The spike function ``H`` with surrogate derivative ``name``: forward ``s = 1[x >= 0]``, backward
    ``ds/dx := h(x)``, e.g. rectangular ``(1/a) 1[|x| < a/2]``, sigmoid ``alpha sig(alpha x)(1 - sig(alpha x))``,
    fast_sigmoid ``1 / (1 + k|x|)^2``, arctan ``(alpha/2) / (1 + (pi/2 alpha x)^2)`` (module table). Applies
    elementwise to ``x = v - threshold`` of any shape.

    Unknown ``name`` or parameter, or a parameter <= 0, raises ``ConfigError``.
    """
    return Surrogate(name, **params)


def list_surrogates() -> list[str]:
    """Names accepted by ``get_surrogate``, sorted."""
    return sorted(_SURROGATES)
