"""Exponential moving average of the weights (Polyak averaging), evaluated in place of the raw weights.

After every optimizer step ``k`` (1, 2, ...), each floating-point parameter ``p`` updates its average

    ``a <- d_k a + (1 - d_k) p``,   ``d_k = min(decay, (1 + k) / (10 + k))``

(the warm-up keeps the first averages close to the recent weights instead of the initialisation).
Buffers (batch-norm running statistics, integer counters) are copied, not averaged. ``swapped(model)``
puts the averages into the model for evaluation and restores the raw weights afterwards; checkpoints keep
both (``model``: raw, to continue training; ``ema``: what was evaluated and what ``load_run`` returns).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepspike.core.errors import ConfigError


class WeightAverage:
    """EMA of ``model``'s floating-point parameters; ``decay`` in (0, 1)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"weight-average decay must lie in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.updates = 0
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._params = {name for name, p in model.named_parameters() if p.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (call after each optimizer step)."""
        self.updates += 1
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for name, value in model.state_dict().items():
            avg = self.average[name]
            if name in self._params:
                avg.mul_(d).add_(value.detach(), alpha=1.0 - d)
            else:
                avg.copy_(value)

    @contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """``with ema.swapped(model):`` the model holds the averages; the raw weights come back after."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.average)
        try:
            yield model
        finally:
            model.load_state_dict(raw)

    def state_dict(self) -> dict:
        return {"average": self.average, "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state["average"].items():
            self.average[name].copy_(value)
        self.updates = int(state["updates"])
