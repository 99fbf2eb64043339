"""Spike function: Heaviside step forward, a smooth surrogate derivative backward.

Forward (tie convention: a neuron fires when its membrane reaches the threshold)::

    s = H(x) = 1 if x >= 0 else 0,        x = v - threshold      (NaN if x is NaN)

This is wu2019's written step function (``f(x) = 0`` for ``x < 0``, otherwise 1). wu2019's code and
lee2020's text use ``v > threshold`` instead; the two differ only on the measure-zero set ``v == threshold``.
A NaN membrane gives a NaN spike rather than a silent 0, so that it reaches the output (``neurons.dynamics``).

Backward: ``ds/dx`` is replaced by ``h(x)``, chosen by name:

===================  ===========  =====================================================  =========
name                 parameter    h(x)                                                   default
===================  ===========  =====================================================  =========
rectangular          a (width)    ``(1/a) * 1[|x| < a/2]``  (wu2019 eq. 14)               a = 1
sigmoid              alpha        ``alpha * sig(alpha x) * (1 - sig(alpha x))``           alpha = 4
fast_sigmoid         k (slope)    ``1 / (1 + k|x|)^2``  (SuperSpike)                      k = 25
arctan               alpha        ``(alpha/2) / (1 + (pi/2 * alpha * x)^2)``              alpha = 2
triangular           a (width)    ``(1/a) * max(0, 1 - |x|/a)``                           a = 1
erf                  alpha        ``(alpha/sqrt(pi)) * exp(-(alpha x)^2)``                alpha = 2
piecewise_quadratic  alpha        ``alpha * max(0, 1 - alpha|x|)``  (Esser et al. 2016)   alpha = 1
straight_through     (none)       ``1``                                                   (none)
===================  ===========  =====================================================  =========

``rectangular``, ``sigmoid``, ``arctan``, ``triangular``, ``erf`` and ``piecewise_quadratic`` integrate to 1 over
the real line (they are derivatives of smoothed steps: ``erf``'s of ``erfc(-alpha x)/2``); ``fast_sigmoid`` peaks
at 1 and integrates to ``2/k``. ``triangular`` is the tent of half-width ``a`` and peak ``1/a``: the peak of
``rectangular``'s box of the same ``a`` (width ``a``), so at the threshold both give ``1/a``, and the default
``a = 1`` gives the tent ``max(0, 1 - |x|)`` of Esser et al. 2016 (Bellec et al. 2018's LSNN pseudo-derivative at
threshold 1, without its damping factor 0.3).
``piecewise_quadratic`` (SpikingJelly's ``PiecewiseQuadratic``, written there ``alpha - alpha^2 |x|`` on
``|x| <= 1/alpha``: the derivative of a piecewise quadratic step) is the same tent with ``a = 1/alpha`` (its default
alpha = 1 is triangular's a = 1). ``erf`` is SpikingJelly's ``Erf``, the derivative of ``erfc(-alpha x)/2`` (a
Gaussian of standard deviation ``1/(alpha sqrt 2)``). ``straight_through`` is snnTorch's
``straight_through_estimator``: ``ds/dx = 1`` everywhere (``x = v - threshold``, so ``ds/dv = 1`` too), no
parameter and no finite integral: every neuron passes its whole gradient, however far from the threshold.

``register_surrogate(name, **defaults)`` adds a derivative of one's own, ``h(x, **params)``; those run on the
unfused torch loop only: the fused kernels (``neurons.fused``) implement the built-in names, and the automatic
dispatch falls back to the loop for any other, while ``fused=True`` refuses it in one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import shown_value
from deepspike.core.registration import factory_registrar

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


def _tent(x: torch.Tensor, peak: float, rate: float) -> torch.Tensor:
    """``peak * max(0, 1 - rate |x|)`` (NaN for NaN): ``triangular`` and ``piecewise_quadratic``."""
    return peak * (1 - rate * x.abs()).clamp_min(0)


def _triangular(x: torch.Tensor, a: float) -> torch.Tensor:
    return _tent(x, 1 / a, 1 / a)


def _piecewise_quadratic(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return _tent(x, alpha, alpha)


def _erf(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha / math.sqrt(math.pi)) * torch.exp(-((alpha * x) ** 2))


def _straight_through(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x)


# name -> (derivative h(x, **params), default params); every parameter must be > 0.
_SURROGATES: dict[str, tuple[Derivative, dict[str, float]]] = {
    "rectangular": (_rectangular, {"a": 1.0}),
    "sigmoid": (_sigmoid, {"alpha": 4.0}),
    "fast_sigmoid": (_fast_sigmoid, {"k": 25.0}),
    "arctan": (_arctan, {"alpha": 2.0}),
    "triangular": (_triangular, {"a": 1.0}),
    "erf": (_erf, {"alpha": 2.0}),
    "piecewise_quadratic": (_piecewise_quadratic, {"alpha": 1.0}),
    "straight_through": (_straight_through, {}),
}
BUILT_IN = tuple(_SURROGATES)
"""The built-in surrogates (each has a fused kernel: ``fused_constants.SURROGATE_CODES``)."""

_OWN: dict[str, Derivative] = {}  # register_surrogate's derivatives, by name
_OWN_DEFAULTS: dict[str, dict[str, float]] = {}  # and their default parameters


_FLOAT32 = torch.finfo(torch.float32)
# (name, parameter) -> the largest value whose constants stay finite in float32: arctan's ``pi/2 alpha`` (the fused
# kernels' p2, torch's scalar) was inf above float32's largest / (pi/2), and ``h(0) = (alpha/2) / (1 + (inf 0)^2)``
# NaN: a NaN gradient wherever the membrane met the threshold exactly
_HIGHEST = {("arctan", "alpha"): float(_FLOAT32.max) / (math.pi / 2)}


def _checked_params(name: str, params: dict[str, float]) -> dict[str, float]:
    """``params`` as floats; ``ConfigError`` unless each is a number > 0 that float32 holds as a normal number (the
    kernels compute in float32: 1e39 would be infinite there, 1e-46 zero), and at most ``_HIGHEST`` where the
    surrogate scales it (arctan's alpha: 2.17e38); ``true`` is not a number here."""
    merged = {}
    wanted = f"a number > 0 within float32's range ({_FLOAT32.tiny:.3g} to {_FLOAT32.max:.3g})"
    for key, value in params.items():
        try:
            if isinstance(value, bool):
                raise TypeError
            merged[key] = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
            raise ConfigError(f"surrogate {name!r} parameter {key}={shown_value(value)} must be {wanted}") from None
    for key, value in merged.items():
        if not _FLOAT32.tiny <= value <= _FLOAT32.max:
            raise ConfigError(f"surrogate {name!r} parameter {key}={value} must be {wanted}")
        highest = _HIGHEST.get((name, key))
        if highest is not None and value > highest:
            raise ConfigError(f"surrogate {name!r} parameter {key}={value} must be at most {highest:.4g}, so that "
                              f"its constants stay finite in float32")
    return merged


def register_surrogate(name: str, **defaults: float) -> Callable[[Derivative], Derivative]:
    """Decorator registering ``h(x, **params) -> tensor`` (``x = v - threshold``, any shape; ``h(x)`` of ``x``'s shape,
    the value the backward pass uses for ``ds/dx``) as the surrogate ``name`` with default parameters ``defaults``.

    ``get_surrogate(name, **params)`` (and ``surrogate: name`` in a recipe, with ``surrogate_args``) then uses it:
    forward ``s = H(x) = 1[x >= 0]``, backward ``grad_x = grad_s * h(x, **params)``. A registered surrogate runs on the
    unfused torch loop: the fused kernels (numba, Triton) implement only the built-in ones, so the automatic dispatch
    falls back to the loop and ``fused=True`` refuses it. ``TypeError`` for a name that is not a new non-empty string
    (a built-in's included) or an ``h`` that is not callable; ``ConfigError`` for a default that is not a finite
    number > 0, or a name another function has (``core.registration``)."""
    checked = _checked_params(name, defaults)
    register = factory_registrar("register_surrogate", "surrogate", name, BUILT_IN, _OWN)

    def wrap(fn: Derivative) -> Derivative:
        register(fn)
        _OWN_DEFAULTS[name] = checked
        return fn

    return wrap


def _lookup(name: str) -> tuple[Derivative, dict[str, float]]:
    """``(h, default params)`` of a built-in or registered surrogate; ``ConfigError`` listing the valid names."""
    if name in _SURROGATES:
        return _SURROGATES[name]
    if name in _OWN:
        return _OWN[name], _OWN_DEFAULTS[name]
    raise unknown_choice("surrogate", name, list_surrogates())


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
        fn, defaults = _lookup(name)
        unknown = set(params) - set(defaults)
        if unknown:
            bad = sorted(unknown)[0]
            raise ConfigError(
                f"unknown parameter {bad!r} for surrogate {name!r}; valid: {', '.join(defaults) or '(none)'}"
            )
        merged = {**defaults, **_checked_params(name, params)}
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
    fast_sigmoid ``1 / (1 + k|x|)^2``, arctan ``(alpha/2) / (1 + (pi/2 alpha x)^2)``, triangular
    ``(1/a) max(0, 1 - |x|/a)``, erf ``(alpha/sqrt(pi)) exp(-(alpha x)^2)``, piecewise_quadratic
    ``alpha max(0, 1 - alpha|x|)``, straight_through ``1`` (module table), or one ``register_surrogate`` added.
    Applies elementwise to ``x = v - threshold`` of any shape.

    Unknown ``name`` or parameter, or a parameter <= 0, raises ``ConfigError``.
    """
    return Surrogate(name, **params)


def list_surrogates() -> list[str]:
    """Names accepted by ``get_surrogate`` (the built-in ones and those registered), sorted."""
    return sorted((*_SURROGATES, *_OWN))
