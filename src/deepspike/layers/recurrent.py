"""A recurrent spiking layer: the neurons' own spikes of the step before feed back through a weight.

``I_t = W x_t + V s_{t-1}`` (``s_{-1} = 0``), ``s_t = neuron(I_t)``; shapes ``x [T, B, N]``, ``I, s [T, B, M]``,
``W [M, N]`` (the feed-forward layer, run once on all T steps as ``[T*B, N]``), ``V [M, M]``. This is snnTorch's
``RLeaky(all_to_all=True)`` / Norse's ``LIFRecurrent`` for any of our neurons: the neuron is a multistep module
called on one step ``[1, B, M]`` at a time while it carries its state from call to call (``neurons.carry``), so
LIF, PLIF, synaptic and adaptive LIF, or one registered with ``register_neuron``, all work; a neuron that cannot
carry its state (PSN looks at all T steps at once) is refused.

With an IF or LIF neuron (``SpikingNeuron``) the whole loop runs as one autograd node instead
(``neurons.recurrent_scan``: the same spikes, the BPTT gradient written out, ``dL/dV`` in a few large GEMMs),
unless the fused paths are switched off (``DEEPSPIKE_FUSED=0``), the carry detaches each step (SLTT/OTTT), or a
hook watches the feedback layer or the neuron (the analysis monitors then see every step's call). The output is
marked as spikes, so the next layer saves it in one byte per value (``layers.spike_storage``).

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
from torch.nn.modules import module as module_hooks

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.layers.spike_storage import mark_spikes
from deepspike.layers.spiking_sequential import fusable_neuron, hooked
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.carry import CarriesState, Carry
from deepspike.neurons.fused import switched_on
from deepspike.neurons.recurrent_scan import recurrent_multistep, scan_supported


class RecurrentSpiking(CarriesState, nn.Module):
    """``feedforward`` ``[T, B, N] -> [T, B, M]``, then the step loop of the module docstring.

    feedforward: the layer computing ``W x_t`` for all steps at once (e.g. ``TimeDistributed(nn.Linear(N, M))``).
    neuron: a multistep spiking neuron on ``[T, B, M]`` that ``CarriesState``, not in-place (its one-step input
    may be a view of the feed-forward output). features: ``M``. bias: the feedback ``V s_{t-1} + b`` has a bias
    (NIR files whose recurrent weight is an ``Affine``; it also acts at step 0, where ``s_{-1} = 0``).
    A ``features`` that is no whole number >= 1, or (at the call) that is not the feed-forward output's last size
    ``M``, is a one-line ``ConfigError``.
    """

    def __init__(self, feedforward: nn.Module, neuron: nn.Module, features: int, bias: bool = False) -> None:
        super().__init__()
        refusal = neuron.pieces_refusal() if hasattr(neuron, "pieces_refusal") else None  # the masked PSN's
        if not isinstance(neuron, CarriesState) or refusal is not None:
            why = refusal or "it does not carry its state from step to step"
            raise ConfigError(f"a recurrent layer steps its neuron one time step at a time, which "
                              f"{type(neuron).__name__} cannot do ({why}); use method.neuron lif, plif, sliding_psn, "
                              "synaptic or alif")
        if not is_whole(features, 1):  # 0 made a [0, 0] feedback, 2.5 or True a TypeError in nn.Linear
            raise ConfigError(f"a recurrent layer's features must be a whole number >= 1, got {features!r}")
        self.feedforward = feedforward
        self.recurrent = TimeDistributed(nn.Linear(features, features, bias=bias))
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        currents = self.feedforward(x)  # [T, B, M]
        if currents.shape[-1:] != (self.recurrent.module.in_features,):  # was 'mat1 and mat2 shapes cannot be ...'
            raise ConfigError(f"a recurrent layer of {self.recurrent.module.in_features} features got currents "
                              f"{list(currents.shape)} from its feed-forward layer: their last size must be that")
        if self._scans(currents):
            return self._scan(currents)
        previous = self.carried()  # s_{t-1} [1, B, M] of the previous call, or None
        outputs = []
        with _stepping(self.neuron):
            for current in currents.unbind(0):  # one backward node for all steps (a slice's backward
                step = current.unsqueeze(0)  # would fill a zero [T, B, M] gradient per step)
                if previous is None:  # s_{-1} = 0: V takes part in every call (torchrun's DDP needs each weight
                    previous = torch.zeros_like(step)  # used), and a bias of the feedback acts from step 0
                previous = self.neuron(step + self.recurrent(previous))  # [1, B, M]
                outputs.append(previous)
                if self.carry is not None and self.carry.detach:  # SLTT/OTTT: no gradient through time
                    previous = previous.detach()
        self.keep(previous)
        return mark_spikes(torch.cat(outputs) if outputs else currents * 0, 1)  # [T, B, M] (T = 0: empty)

    def _scans(self, currents: torch.Tensor) -> bool:
        """Whether the whole loop runs as one ``neurons.recurrent_scan`` node: an IF/LIF neuron, the fused paths
        switched on, the state kept in the graph (not SLTT/OTTT's detached steps) and no hooks on the feedback
        layer or the neuron (the analysis monitors see each call of the step loop)."""
        watched = hooked(self.recurrent) or hooked(self.recurrent.module) or bool(
            module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks)
        detached = self.carry is not None and (self.carry.detach or self.carry.trace_decay is not None)
        return (switched_on() and fusable_neuron(self.neuron) and not watched and not detached
                and scan_supported(currents, self.recurrent.module.weight, self.neuron.params))

    def _scan(self, currents: torch.Tensor) -> torch.Tensor:
        """The step loop as one autograd node, from the carried membrane and spikes (``[1, B, M]`` kept)."""
        feedback, previous = self.recurrent.module, self.carried()
        spikes, v = recurrent_multistep(currents, feedback.weight, feedback.bias, self.neuron.params,
                                        v0=self.neuron.carried(), s0=None if previous is None else previous[0])
        self.neuron.keep(v)
        self.keep(spikes[-1:].clone())  # a copy: a view would keep all T steps alive with the state
        return mark_spikes(self.neuron.reported(spikes), 1)  # the next layer saves them as bytes

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
