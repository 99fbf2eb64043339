"""Temporal state carried across calls: a network run over time in pieces instead of all T steps at once.

A network's modules normally start every call afresh (``v_0 = 0`` for a neuron). Inside ``temporal_carry(model)``
each module that ``CarriesState`` starts a call from the state its previous call ended with, so running the
network on steps ``[0, S)``, then ``[S, 2S)``, ... gives exactly what one call on all T steps gives. This is
what checkpointed BPTT (time in segments, ``methods.rate_network``), online training (one step at a time,
``training.online``) and streaming inference are built on.

Options of the block (``Carry``):
  * ``detach``: the carried state leaves the autograd graph at each call. One step at a time, this keeps only
    the spatial path of the gradient (SLTT, Meng et al., ICCV 2023; OTTT, Xiao et al., NeurIPS 2022) and lets
    each step's graph be freed after its backward: memory that does not grow with T.
  * ``trace_decay``: synaptic layers (``layers.time_distributed``) keep the presynaptic trace
    ``a_t = lambda a_{t-1} + x_t`` of their input and take their weight gradient from it instead of from
    ``x_t`` (OTTT); None: no traces.
  * ``bias_trace``: with traces, a layer's bias is a synapse from a constant input 1 whose gradient takes the
    trace ``c_t = lambda c_{t-1} + 1`` (e-prop, ``training.eprop``); off: the bias gradient is the step's own.

``read_state`` / ``write_state`` save and restore every carried state (in module order), which is how a
checkpointed segment is replayed in the backward pass from the state it started with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Carry:
    """The settings of a ``temporal_carry`` block (module docstring)."""

    detach: bool = False
    trace_decay: float | None = None
    bias_trace: bool = False


class CarriesState:
    """Mixin for modules with state across time steps; ``state`` is whatever the module needs (a tensor, a
    tuple of tensors), None at the start of a block and outside blocks."""

    carry: Carry | None = None
    state: Any = None

    def carried(self) -> Any:
        """The state to start this call from: the previous call's end state inside a block, else None."""
        return self.state if self.carry is not None else None

    def keep(self, state: Any) -> None:
        """Remember ``state`` for the next call (detached when the block says so); a no-op outside blocks."""
        if self.carry is None:
            return
        if self.carry.detach and state is not None:
            parts = state if isinstance(state, tuple) else (state,)
            parts = tuple(s.detach() if isinstance(s, torch.Tensor) else s for s in parts)  # a step count stays
            state = parts if isinstance(state, tuple) else parts[0]
        self.state = state


def neuron_without_carry(model: nn.Module) -> nn.Module | None:
    """The first spiking neuron of ``model`` (class attribute ``is_spiking_neuron``) that is not ``CarriesState``,
    else None: run one step at a time, such a neuron would start every step from rest."""
    return next((m for m in model.modules()
                 if getattr(m, "is_spiking_neuron", False) and not isinstance(m, CarriesState)), None)


def stateful_modules(model: nn.Module) -> list[CarriesState]:
    """The modules of ``model`` that carry state, in ``model.modules()`` order."""
    return [m for m in model.modules() if isinstance(m, CarriesState)]


def temporal_carry(model: nn.Module, detach: bool = False, trace_decay: float | None = None, bias_trace: bool = False):
    """In the block every ``CarriesState`` module of ``model`` starts afresh, then keeps its state between
    calls (module docstring); afterwards the states are dropped."""
    return carrying(stateful_modules(model), None, Carry(detach, trace_decay, bias_trace))


@contextmanager
def carrying(modules: list[CarriesState], states: list[Any] | None = None, carry: Carry = Carry()) -> Iterator[None]:
    """``temporal_carry`` on a list of stateful modules found once (``stateful_modules``), each starting from its
    entry of ``states`` (``read_state``'s order; None: afresh): a caller that runs many short blocks on the same
    net (streaming, one step per block) walks the module tree once instead of in every block."""
    starts = [None] * len(modules) if states is None else states
    if len(starts) != len(modules):
        raise ValueError(f"{len(starts)} states for {len(modules)} stateful modules")
    for m, s in zip(modules, starts, strict=True):
        m.carry, m.state = carry, s
    try:
        yield
    finally:
        for m in modules:
            m.carry, m.state = None, None


def read_state(model: nn.Module) -> list[Any]:
    """Every carried state of ``model``, in ``stateful_modules`` order."""
    return [m.state for m in stateful_modules(model)]


def write_state(model: nn.Module, states: list[Any]) -> None:
    """Restore states read by ``read_state`` from the same model."""
    modules = stateful_modules(model)
    if len(modules) != len(states):
        raise ValueError(f"{len(states)} states for {len(modules)} stateful modules")
    for m, s in zip(modules, states, strict=True):
        m.state = s
