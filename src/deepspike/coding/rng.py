"""Reproducible randomness for encoders: a ``torch.Generator``, an integer seed, or None (global RNG)."""

from __future__ import annotations

import numbers

import torch

from deepspike.core.errors import ConfigError

GeneratorLike = torch.Generator | int | None
SEED_MAX = 2**64 - 1
"""The largest seed ``torch.Generator.manual_seed`` takes as itself (it reads seeds modulo 2**64)."""


def as_generator(generator: GeneratorLike, device: torch.device | str = "cpu") -> torch.Generator | None:
    """An integer seed ``s`` (a Python or NumPy integer, not a bool) from 0 to ``2**64 - 1`` seeds a fresh generator
    on ``device`` with ``manual_seed(s)``, so every seed gives its own stream; a generator or None is returned
    unchanged. Anything else, a negative seed (torch took -1 as 2**64 - 1) or a larger one (a ValueError traceback),
    is a one-line ``ConfigError``."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, numbers.Integral):
        raise ConfigError(f"generator must be a torch.Generator, an integer seed or None; got {generator!r}")
    if not 0 <= int(generator) <= SEED_MAX:
        raise ConfigError(f"a generator seed must be an integer from 0 to 2**64 - 1, got {int(generator)}")
    return torch.Generator(device=device).manual_seed(int(generator))
