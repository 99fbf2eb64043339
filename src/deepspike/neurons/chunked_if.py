"""The converted network's IF neuron: ``deepspike.neurons.IF`` that can carry its membrane across time chunks.

A long simulation (T = 2500 steps) does not fit in memory as one ``[T, B, ...]`` tensor, so the converted
network runs time in chunks. Inside one network call (``carry_state``) each neuron keeps its post-reset
membrane ``v`` between chunks; outside it, a call starts from ``v = 0`` like every other neuron module,
so no ``reset_net()`` is ever needed by the user.

Dynamics (sengupta2019 eq. 2, no leak): ``h_t = v_{t-1} + x_t``, ``s_t = 1[h_t >= th]``, then
``v_t = 0`` (reset "zero", the paper) or ``v_t = h_t - th`` (reset "subtract") where ``s_t = 1``. Input checks,
empty inputs and NaN (propagated to the spikes) as for every neuron: ``deepspike.neurons.dynamics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepspike.neurons import IF, neuron_multistep
from deepspike.neurons.dynamics import check_currents
from deepspike.neurons.surrogate import heaviside


class ChunkedIF(IF):
    """IF layer ``x [T, B, ...] -> spikes [T, B, ...]`` keeping its membrane across calls while carrying."""

    is_spiking_neuron = True

    def __init__(self, threshold: float = 1.0, reset: str = "zero") -> None:
        super().__init__(threshold=threshold, reset=reset)
        self.carry = False
        self.v: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v0 = self.v if self.carry else None
        check_currents(x)
        if torch.is_grad_enabled():
            spikes, v = neuron_multistep(x, self.params, v0=v0)
        else:
            spikes, v = self._fast(x, v0)
        if self.carry:
            self.v = v
        return spikes

    def _fast(self, x: torch.Tensor, v0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The same update as ``neuron_multistep`` in place, for inference: ``[T, B, ...]`` -> spikes, ``v_T``.
        Only in-place ops on ``v`` and the spikes, no temporaries (faster on CPU than a bool mask and
        ``masked_fill_``)."""
        th, zero = self.params.threshold, self.params.reset == "zero"
        v = x.new_zeros(x.shape[1:]) if v0 is None else v0.clone()
        spikes = torch.empty_like(x)
        for t in range(x.shape[0]):
            s = spikes[t]
            v.add_(x[t])  # h_t = v_{t-1} + x_t
            heaviside(torch.sub(v, th, out=s), out=s)  # s_t = H(h_t - th), NaN for a NaN membrane
            if zero:
                v.addcmul_(v, s, value=-1.0)  # v_t = h_t (1 - s_t)
            else:
                v.sub_(s, alpha=th)  # v_t = h_t - th s_t
        return spikes, v

    @property
    def threshold(self) -> float:
        return self.params.threshold


def chunked_neurons(model: nn.Module) -> list[ChunkedIF]:
    """Every ``ChunkedIF`` of ``model`` in registration order (= execution order for built specs)."""
    return [m for m in model.modules() if isinstance(m, ChunkedIF)]


@contextmanager
def carry_state(model: nn.Module) -> Iterator[None]:
    """In the block every ``ChunkedIF`` of ``model`` starts at ``v = 0`` and keeps ``v`` between calls."""
    neurons = chunked_neurons(model)
    for n in neurons:
        n.carry, n.v = True, None
    try:
        yield
    finally:
        for n in neurons:
            n.carry, n.v = False, None
