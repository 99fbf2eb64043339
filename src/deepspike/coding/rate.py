"""Rate encoders: images ``[B, ...]`` -> input trains ``[T, B, ...]`` (time first)."""

from __future__ import annotations

import operator

import torch

from deepspike.coding.rng import GeneratorLike, as_generator
from deepspike.core.errors import ConfigError
from deepspike.core.precision import at_least_float32


def check_steps(T: int) -> int:
    """``T`` as a Python int >= 1 (anything with ``__index__``), else ``ConfigError``."""
    try:
        steps = operator.index(T)
    except TypeError:
        steps = 0
    if isinstance(T, bool) or steps < 1:
        raise ConfigError(f"number of time steps T={T!r} must be an integer >= 1")
    return steps


def check_floating(x: torch.Tensor, what: str) -> None:
    """``ConfigError`` unless ``x`` is a floating-point tensor (an int, bool or NumPy input would reach torch's
    sampling as an error about its kernels)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{what} needs a floating-point tensor; got {got}")


def check_intensities(x: torch.Tensor, what: str, hint: str = "") -> None:
    """``ConfigError`` unless ``x`` is a floating-point tensor whose every value lies in [0, 1]; NaN does not (one
    min/max pass, in which a NaN fails both comparisons instead of passing them)."""
    check_floating(x, what)
    if x.numel() and not (x.min() >= 0 and x.max() <= 1):
        got = "NaN" if torch.isnan(x).any() else f"values in [{x.min().item():g}, {x.max().item():g}]"
        raise ConfigError(f"{what} needs intensities in [0, 1]; got {got}{hint}")


def _uniform(x: torch.Tensor, T: int, generator: GeneratorLike) -> torch.Tensor:
    """``U_t ~ Uniform(0, 1)`` ``[T, B, ...]`` in float32 at least: torch draws a bfloat16 or float16 uniform on a
    grid of 2^-8 / 2^-11, rounded, so ``P(U < x)`` would miss ``x`` (a bfloat16 ``x = 0.001`` fired at 0.0029 per
    step). A float32 ``U`` compares exactly with the half-precision ``x`` (promoted), up to 2^-24."""
    gen = as_generator(generator, x.device)
    dtype = at_least_float32(x.dtype)
    return torch.rand((T, *x.shape), generator=gen, device=x.device, dtype=dtype)  # [T, B, ...]


def rate_poisson(x: torch.Tensor, T: int, generator: GeneratorLike = None) -> torch.Tensor:
    """Bernoulli (discrete Poisson) spike trains: ``s_t = 1[U_t < x]``, ``U_t ~ Uniform(0, 1)`` i.i.d.

    x: intensities ``[B, ...]`` in [0, 1] (``ConfigError`` otherwise, NaN included); returns ``[T, B, ...]`` of 0/1 in
    ``x``'s dtype, so ``P(s_t = 1) = x`` and ``E[mean_t s_t] = x`` (``U`` drawn in float32 for a half-precision
    ``x``: ``_uniform``). ``generator``: a generator, a seed, or
    None for torch's global RNG.
    """
    T = check_steps(T)
    check_intensities(x, "rate_poisson", " (use rate_bipolar for signed input)")
    return (_uniform(x, T, generator) < x).to(x.dtype)


def rate_bipolar(x: torch.Tensor, T: int, generator: GeneratorLike = None) -> torch.Tensor:
    """Signed spike trains (lee2020): ``s_t = sign(x) * 1[|x| > U_t]``, ``U_t ~ Uniform(0, 1)`` i.i.d.

    x: ``[B, ...]``, nominally in [-1, 1]; returns ``[T, B, ...]`` with values -1, 0, 1 in ``x``'s dtype,
    ``P(s_t != 0) = min(|x|, 1)``: values with ``|x| >= 1`` (e.g. mean/std-normalised pixels) fire every
    step, as in lee2020's code. No value check (nothing else scans ``x`` here): a NaN never fires.
    """
    T = check_steps(T)
    check_floating(x, "rate_bipolar")
    return (torch.sign(x) * (x.abs() > _uniform(x, T, generator))).to(x.dtype)


def direct(x: torch.Tensor, T: int) -> torch.Tensor:
    """Analog input repeated at every step (wu2019's encoding layer): ``s_t = x``.

    x: ``[B, ...]`` -> ``[T, B, ...]``, a stride-0 view of ``x`` (``expand``, no copy): do not write to it. ``x``
    that is no tensor (a list, a NumPy array: once an AttributeError of ``unsqueeze``) is a ``ConfigError``.
    """
    T = check_steps(T)
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"direct needs a tensor [B, ...]; got {type(x).__name__}")
    return x.unsqueeze(0).expand(T, *x.shape)  # [B, ...] -> [1, B, ...] -> [T, B, ...]


def time_invariant(x: torch.Tensor) -> bool:
    """True when ``x [T, B, ...]`` (T > 1) is one ``[B, ...]`` tensor repeated over T as a stride-0 view, as
    ``direct`` makes it: every step's values are ``x[0]``."""
    return x.dim() >= 2 and x.shape[0] > 1 and x.stride(0) == 0
