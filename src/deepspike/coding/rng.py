"""Reproducible randomness for encoders: a ``torch.Generator``, an integer seed, or None (global RNG)."""

from __future__ import annotations

import torch

GeneratorLike = torch.Generator | int | None


def as_generator(generator: GeneratorLike, device: torch.device | str = "cpu") -> torch.Generator | None:
    """An int seeds a fresh generator on ``device``; a generator or None is returned unchanged."""
    if isinstance(generator, bool) or not (
        generator is None or isinstance(generator, (int, torch.Generator))
    ):
        raise TypeError(f"generator must be a torch.Generator, an int seed or None; got {generator!r}")
    if isinstance(generator, int):
        return torch.Generator(device=device).manual_seed(generator)
    return generator
