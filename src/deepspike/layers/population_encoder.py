"""``PopulationEncoder``: the input of a rate network population-coded (``coding.population``), as currents or spikes.

``forward(x, timesteps) -> [T, B, ...]``, the feature axis widened ``P`` times (feature-major):

* static samples, images ``[B, C, H, W]`` or feature vectors ``[B, F]``: the responses ``r [B, C P, H, W]`` /
  ``[B, F P]`` at every step (``spikes=False``, a stride-0 view like ``direct``) or Bernoulli spikes
  ``s_t = 1[U_t < r]`` drawn anew at every step (``spikes=True``, like ``poisson``);
* sequences ``[B, T', F]`` and frames ``[B, T', C, H, W]``: their first ``T`` steps (``layers.event_frames.
  first_steps``), each coded on its own, ``[T, B, F P]`` / ``[T, B, C P, H, W]``, as currents or spikes alike.

The network's first layer sees ``encoded_shape(shape)`` per step: the method builds its architecture for that shape
(``Method.input_shape``). Random draws use torch's global generator, so checkpoints restore them exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.coding import direct, rate_poisson
from deepspike.coding.population import BOHTE_WIDTH, check_population, population_code
from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import first_steps


def encoded_shape(shape: tuple[int, ...], size: int) -> tuple[int, ...]:
    """One sample's per-step shape ``(C, ...)`` after population coding with ``size`` neurons per value:
    ``(C * size, ...)``."""
    return (shape[0] * size, *shape[1:]) if shape else shape


def is_sequence(x: torch.Tensor) -> bool:
    """Whether a batch ``x`` holds sequences ``[B, T', F]`` or frames ``[B, T', C, H, W]`` (3 or 5 axes) rather than
    static samples ``[B, F]`` or ``[B, C, H, W]``."""
    return x.dim() in (3, 5)


class PopulationEncoder(nn.Module):
    """Population coding of a rate network's input (module docstring): ``size`` neurons per value with centres on
    ``[low, high]`` and Gaussian fields ``width`` spacings wide; ``spikes``: Bernoulli spikes instead of currents.
    ``kind`` is ``"population"``."""

    kind = "population"

    def __init__(self, size: int, low: float = 0.0, high: float = 1.0, width: float = BOHTE_WIDTH,
                 spikes: bool = False) -> None:
        super().__init__()
        check_population(size, low, high, width)
        self.size, self.low, self.high, self.width = size, float(low), float(high), float(width)
        self.spikes = bool(spikes)

    @property
    def widening(self) -> int:
        """How many values the network sees per input value (``size``)."""
        return self.size

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        if x.dim() < 2:
            raise ConfigError(f"population coding needs a batch of samples [B, ...], got shape {tuple(x.shape)}")
        if is_sequence(x):
            r = population_code(first_steps(x, timesteps, "population"), self.size, self.low, self.high,
                                self.width, dim=2)  # [T, B, F P] / [T, B, C P, H, W]
            return rate_poisson(r, 1)[0] if self.spikes else r  # one Bernoulli draw per step: [1, T, ...] -> [T, ...]
        r = population_code(x, self.size, self.low, self.high, self.width, dim=1)  # [B, F P] / [B, C P, H, W]
        return rate_poisson(r, timesteps) if self.spikes else direct(r, timesteps)

    def extra_repr(self) -> str:
        return (f"size={self.size}, low={self.low:g}, high={self.high:g}, width={self.width:g}, "
                f"spikes={self.spikes}")
