"""Thin ``nn.Module`` wrappers: ``x [T, B, ...] -> spikes [T, B, ...]``, no state kept between calls.

Input policy (``neurons.dynamics``): floating-point ``x`` only (``ConfigError`` for bool, integer, complex); an
empty ``x`` gives empty spikes; a NaN current gives NaN spikes for that neuron from its step on (propagated, so
it reaches the loss, rather than silencing the neuron).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from deepspike.core.spike_tally import ReportsSpikes
from deepspike.neurons.carry import CarriesState
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.fused_low_precision import carried_start
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.state_quant import StateQuant
from deepspike.neurons.update_cost import membrane_ops


class SpikingNeuron(CarriesState, ReportsSpikes, nn.Module):
    """A layer of neurons with ``params``; every call starts from ``v_0 = 0`` (no ``reset_net()`` needed), or
    inside ``neurons.carry.temporal_carry`` from the membrane its previous call ended with (float32 where the
    bfloat16 / float16 kernels run: ``fused_low_precision.carried_start``).

    forward: ``x [T, B, ...] -> s [T, B, ...]`` via ``neuron_multistep``. ``params`` may be replaced
    (e.g. ``dataclasses.replace(m.params, threshold=...)`` during threshold balancing). ``inplace=True``
    lets the fused kernel reuse the input's memory (like ``nn.ReLU(inplace=True)``: the input tensor is
    overwritten; ``neurons.fused``); the model builders use it where the input is a fresh layer output.
    """

    is_spiking_neuron = True  # marks modules whose output [T, B, ...] is spikes (analysis.activity)

    def __init__(self, params: NeuronParams, inplace: bool = False) -> None:
        super().__init__()
        self.params = params
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v0 = self.carried() if self.carry is None else carried_start(x, self.params, self.carried())
        s, v = neuron_multistep(x, self.params, v0=v0, inplace=self.inplace)
        self.keep(v)
        return self.reported(s)

    def update_ops(self) -> tuple[int, int]:
        """(MACs, ACs) per neuron and step (``neurons.update_cost``): ``h_t = k v_{t-1} + x_t``, ``h_t >= th``."""
        return membrane_ops(self.params.decay)

    def extra_repr(self) -> str:
        p = self.params
        text = f"decay={p.decay:g}, threshold={p.threshold:g}, reset={p.reset!r}, surrogate={p.spike_fn!r}"
        if p.detach_reset:
            text += ", detach_reset=True"
        if not p.leak_grad and p.decay != 1.0:
            text += ", leak_grad=False"
        if p.state_quant is not None:
            text += f", state_quant={p.state_quant.describe()}"
        return text + (", inplace=True" if self.inplace else "")

    def with_threshold(self, threshold: float) -> SpikingNeuron:
        """Set a new threshold in place; returns ``self``."""
        self.params = replace(self.params, threshold=threshold)
        return self

    def membrane(self, state: Any) -> torch.Tensor:
        """The membrane ``v_t`` after the reset held in a carried ``state`` (``[B, ...]``, one step's shape)."""
        return state

    def threshold_at(self, step: torch.Tensor, state: Any) -> float | torch.Tensor:
        """The threshold that the charge of ``step [1, B, ...]`` meets, given the ``state`` carried into it: a float,
        or a tensor broadcasting against ``step[0]``."""
        return self.params.threshold


class IF(SpikingNeuron):
    """Integrate-and-fire layer, currents ``x [T, B, ...] -> spikes s [T, B, ...]`` (same shape), ``v_0 = 0``::

        h_t = v_{t-1} + x_t,   s_t = H(h_t - threshold),
        v_t = h_t (1 - s_t)  (reset "zero"),  h_t - threshold s_t  ("subtract"),  h_t  ("none")

    ``H`` fires at ``h_t >= threshold``; backward through the ``surrogate`` (``neurons.dynamics``). ``state_quant``
    rounds ``h_t`` to few-bit levels before firing (``neurons.state_quant``).
    """

    def __init__(
        self,
        threshold: float = 1.0,
        reset: str = "zero",
        surrogate: str = "rectangular",
        surrogate_args: Mapping[str, float] | None = None,
        detach_reset: bool = False,
        inplace: bool = False,
        state_quant: StateQuant | None = None,
    ) -> None:
        super().__init__(
            NeuronParams(
                decay=1.0,
                threshold=threshold,
                reset=reset,
                surrogate=surrogate,
                surrogate_args=surrogate_args or {},
                detach_reset=detach_reset,
                state_quant=state_quant,
            ),
            inplace,
        )


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire layer, currents ``x [T, B, ...] -> spikes s [T, B, ...]``, ``v_0 = 0``::

        h_t = decay v_{t-1} + x_t,   s_t = H(h_t - threshold),
        v_t = h_t (1 - s_t)  (reset "zero"),  h_t - threshold s_t  ("subtract"),  h_t  ("none")

    (wu2019 eq. 5-6 with ``decay = 1 - dt/tau``). ``leak_grad=False`` keeps the leak out of the backward pass
    (lee2020; see ``neurons.dynamics``). ``state_quant`` rounds ``h_t`` to few-bit levels before firing
    (``neurons.state_quant``).
    """

    def __init__(
        self,
        decay: float = 0.5,
        threshold: float = 1.0,
        reset: str = "zero",
        surrogate: str = "rectangular",
        surrogate_args: Mapping[str, float] | None = None,
        detach_reset: bool = False,
        leak_grad: bool = True,
        inplace: bool = False,
        state_quant: StateQuant | None = None,
    ) -> None:
        super().__init__(
            NeuronParams(
                decay=decay,
                threshold=threshold,
                reset=reset,
                surrogate=surrogate,
                surrogate_args=surrogate_args or {},
                detach_reset=detach_reset,
                leak_grad=leak_grad,
                state_quant=state_quant,
            ),
            inplace,
        )
