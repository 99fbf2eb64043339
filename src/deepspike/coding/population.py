"""Population coding: each analog input value becomes the responses of ``P`` neurons with Gaussian receptive fields.

For a value ``x`` and ``P >= 2`` neurons whose centres evenly cover ``[low, high]``::

    c_i = low + i (high - low) / (P - 1),   i = 0 .. P - 1
    r_i(x) = exp(-(x - c_i)^2 / (2 sigma^2)),   sigma = width (high - low) / (P - 1)

so ``width`` is the field's standard deviation in units of the spacing of the centres; each ``r_i`` lies in
``(0, 1]``, 1 where ``x`` sits on the centre. A value outside ``[low, high]`` still drives the nearest fields, more
weakly. The responses are analog: fed as currents at every step (like ``direct``) or drawn as Bernoulli spikes with
``p = r_i`` per step (like ``poisson``).

Gaussian receptive fields are the population code of Bohte, Kok & La Poutre ("Error-backpropagation in temporally
encoded networks of spiking neurons", Neurocomputing 48, 2002), whose width is the spacing over ``beta = 1.5``
(``width = 1 / 1.5``, the default here) and whose centres reach half a spacing past each end of the range; ours end
on ``low`` and ``high``. Norse's ``population_encode(x, P, scale)`` (centres ``linspace(0, scale, P)``, response
``exp(-scale (x - c)^2 / 2)``) is this code with ``low = 0``, ``high = scale`` and ``width = (P - 1) / scale^1.5``.

Layout: a feature axis of ``F`` values becomes ``F * P`` values, feature-major (value ``f``'s neuron ``i`` at
``f * P + i``): images ``[B, C, H, W]`` become ``[B, C P, H, W]``, feature vectors ``[..., F]`` become
``[..., F P]``.
"""

from __future__ import annotations

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_float32, is_whole
from deepspike.core.precision import at_least_float32

MAX_POPULATION = 1024
"""The most neurons per value."""
BOHTE_WIDTH = 1.0 / 1.5
"""The default field width in spacings (Bohte et al. 2002: ``beta = 1.5``)."""


def check_population(size: object, low: object, high: object, width: object) -> None:
    """One-line ``ConfigError`` unless ``size`` is an integer in ``[2, MAX_POPULATION]``, ``low < high`` finite
    numbers and ``width`` a finite number > 0, each within float32's range (an int of 10**400 overflowed
    ``torch.linspace``; the responses are float32)."""
    if not is_whole(size, 2, MAX_POPULATION):
        raise ConfigError(f"population_size must be an integer from 2 to {MAX_POPULATION}, got {size!r}")
    numbers = all(is_float32(v) for v in (low, high, width))
    if not numbers or not low < high or not width > 0:
        raise ConfigError(f"population_low < population_high and population_width > 0 must be finite numbers, got "
                          f"{low!r}, {high!r}, {width!r}")


def population_centres(size: int, low: float, high: float) -> torch.Tensor:
    """The ``P`` centres ``c_i`` (module docstring), float64 ``[P]``."""
    return torch.linspace(low, high, size, dtype=torch.float64)


def population_code(x: torch.Tensor, size: int, low: float = 0.0, high: float = 1.0, width: float = BOHTE_WIDTH,
                    dim: int = -1) -> torch.Tensor:
    """The responses ``r_i`` of every value of ``x`` (module docstring), the axis ``dim`` of ``F`` values widened to
    ``F * size`` (feature-major), in ``x``'s floating dtype."""
    check_population(size, low, high, width)
    if not x.is_floating_point():
        raise ConfigError(f"population coding needs analog (floating-point) input, got {x.dtype}")
    if not is_whole(dim, -x.dim(), x.dim() - 1):  # dim % x.dim() wrapped dim=2 of [B, F] round to the batch axis
        raise ConfigError(f"population coding: dim={dim!r} is no axis of an input of shape {list(x.shape)}")
    dim = dim % x.dim()
    dtype = at_least_float32(x.dtype)  # float16 holds no centre beyond 65504
    centres = population_centres(size, low, high).to(x.device, dtype)
    centres = centres.view(size, *([1] * (x.dim() - dim - 1)))  # [P, 1, ...]: broadcasts after axis dim
    # sigma at least the smallest normal number (a width of 1e-300 was 0: 0 / 0 = NaN); one beyond the dtype's range
    sigma = max(width * (high - low) / (size - 1), torch.finfo(dtype).tiny)  # acts as inf: z = 0, r = 1
    # r = exp(-z^2 / 2) with z = (x - c) / sigma: (x - c)^2 / (2 sigma^2) overflowed to inf / inf = NaN for wide ranges
    z = (x.unsqueeze(dim + 1).to(dtype) - centres) / sigma  # [..., F, P, ...]
    return torch.exp(-0.5 * z * z).flatten(dim, dim + 1).to(x.dtype)
