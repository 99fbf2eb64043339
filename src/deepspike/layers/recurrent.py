"""A recurrent spiking layer: the neurons' own spikes of the step before feed back through a weight.

``I_t = W x_t + V s_{t-1}`` (``s_{-1} = 0``), ``s_t = neuron(I_t)``; shapes ``x [T, B, N]``, ``I, s [T, B, M]``,
``W [M, N]`` (the feed-forward layer, run once on all T steps as ``[T*B, N]``), ``V [M, M]``. This is snnTorch's
``RLeaky(all_to_all=True)`` / Norse's ``LIFRecurrent`` for any of our neurons: the neuron is a multistep module
called on one step ``[1, B, M]`` at a time while it carries its state from call to call (``neurons.carry``), so
LIF, PLIF, synaptic and adaptive LIF, or one registered with ``register_neuron``, all work; a neuron that cannot
carry its state (PSN looks at all T steps at once) is refused.

The layer itself ``CarriesState`` (its neuron's state is carried by the neuron): inside ``temporal_carry`` it
starts a call from the spikes the previous call ended with, so running time in pieces (checkpointed BPTT,
SLTT/OTTT online training, streaming) gives what one call gives. ``V`` is a ``TimeDistributed(nn.Linear)`` run on
``[1, B, M]``: the activity recorder counts its synaptic operations like any linear layer's, and OTTT's
presynaptic traces apply to it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.carry import CarriesState, Carry


class RecurrentSpiking(CarriesState, nn.Module):
    """``feedforward`` ``[T, B, N] -> [T, B, M]``, then the step loop of the module docstring.

    feedforward: the layer computing ``W x_t`` for all steps at once (e.g. ``TimeDistributed(nn.Linear(N, M))``).
    neuron: a multistep spiking neuron on ``[T, B, M]`` that ``CarriesState``, not in-place (its one-step input
    may be a view of the feed-forward output). features: ``M``. bias: the feedback ``V s_{t-1} + b`` has a bias
    (NIR files whose recurrent weight is an ``Affine``; it also acts at step 0, where ``s_{-1} = 0``).
    """

    def __init__(self, feedforward: nn.Module, neuron: nn.Module, features: int, bias: bool = False) -> None:
        super().__init__()
        if not isinstance(neuron, CarriesState):
            raise ConfigError(f"a recurrent layer steps its neuron one time step at a time, which "
                              f"{type(neuron).__name__} cannot do (it does not carry its state from step to step); "
                              "use method.neuron lif, plif, synaptic or alif")
        self.feedforward = feedforward
        self.recurrent = TimeDistributed(nn.Linear(features, features, bias=bias))
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        currents = self.feedforward(x)  # [T, B, M]
        previous = self.carried()  # s_{t-1} [1, B, M] of the previous call, or None
        outputs = []
        with _stepping(self.neuron):
            for t in range(currents.shape[0]):
                step = currents[t:t + 1]
                if previous is None:  # s_{-1} = 0: V takes part in every call (torchrun's DDP needs each weight
                    previous = torch.zeros_like(step)  # used), and a bias of the feedback acts from step 0
                previous = self.neuron(step + self.recurrent(previous))  # [1, B, M]
                outputs.append(previous)
                if self.carry is not None and self.carry.detach:  # SLTT/OTTT: no gradient through time
                    previous = previous.detach()
        self.keep(previous)
        return torch.cat(outputs)  # [T, B, M]

    def extra_repr(self) -> str:
        return f"features={self.recurrent.module.in_features}"


@contextmanager
def _stepping(neuron: CarriesState) -> Iterator[None]:
    """The neuron carries its state between the loop's one-step calls: inside an outer ``temporal_carry`` it
    already does (and keeps doing after the loop); outside one it does for this block only, starting at rest."""
    if neuron.carry is not None:
        yield
        return
    neuron.carry, neuron.state = Carry(), None
    try:
        yield
    finally:
        neuron.carry, neuron.state = None, None
