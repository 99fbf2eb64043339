"""Counting the spikes a network emits while it trains: the progress bar's spikes per sample.

Spiking modules (rate neurons, pooling neurons, closed-form TTFS layers) mix in ``ReportsSpikes`` and call
``report_spikes(count)`` with the number of spikes of each call; inside ``counting_spikes(model)`` those counts
go to a ``SpikeTally``, outside it the call does nothing (no extra work in evaluation or when nobody asks).
A count is a 0-d tensor, added up lazily so the training step never waits for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class SpikeTally:
    """The spikes reported so far (``total``) and whether any module reports at all (``reporters``)."""

    def __init__(self) -> None:
        self._counts: list[torch.Tensor] = []
        self.reporters = 0

    def add(self, count: torch.Tensor) -> None:
        self._counts.append(count.detach())

    @property
    def total(self) -> float:
        if len(self._counts) > 1:
            self._counts = [torch.stack([c.to(torch.float64) for c in self._counts]).sum()]
        return float(self._counts[0]) if self._counts else 0.0


class ReportsSpikes:
    """Mixin for modules that emit spikes; ``report_spikes`` hands a call's spike count to the active tally."""

    tally: SpikeTally | None = None

    def report_spikes(self, count: torch.Tensor) -> None:
        if self.tally is not None:
            self.tally.add(count)

    def reported(self, spikes: torch.Tensor) -> torch.Tensor:
        """``spikes`` (returned) after handing their sum to the active tally; nothing is summed without one."""
        if self.tally is not None:
            self.tally.add(spikes.sum(dtype=torch.float32))  # bf16 counts whole numbers only to 256
        return spikes


@contextmanager
def counting_spikes(model: nn.Module, tally: SpikeTally) -> Iterator[SpikeTally]:
    """In the block every ``ReportsSpikes`` module of ``model`` reports to ``tally``."""
    modules = [m for m in model.modules() if isinstance(m, ReportsSpikes)]
    tally.reporters = len(modules)
    for m in modules:
        m.tally = tally
    try:
        yield tally
    finally:
        for m in modules:
            m.tally = None
