"""Spiking neurons: pure IF/LIF dynamics, surrogate spike functions and thin modules; the learnable LIF (PLIF time
constant, threshold: ``learnable``) and the parallel spiking neurons (``psn``, ``masked_psn``, ``sliding_psn``).

Tensors are time-first ``[T, B, ...]``; see ``dynamics`` for the update equations and the input policy of every
neuron: floating-point inputs only (one ``ConfigError`` otherwise), empty inputs give empty spikes, and a NaN
current is propagated (that neuron's spikes are NaN from then on), not silently turned into a silent neuron.
"""

from deepspike.neurons import fused_ops  # noqa: F401  (registers the custom ops torch.compile runs)
from deepspike.neurons.dynamics import membrane_readout, neuron_multistep, neuron_step
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.modules import IF, LIF, SpikingNeuron
from deepspike.neurons.params import RESETS, NeuronParams
from deepspike.neurons.psn import PSN
from deepspike.neurons.sliding_psn import SlidingPSN
from deepspike.neurons.surrogate import Surrogate, get_surrogate, list_surrogates

__all__ = [
    "IF",
    "LIF",
    "PSN",
    "LearnableLIF",
    "MaskedPSN",
    "RESETS",
    "NeuronParams",
    "SlidingPSN",
    "SpikingNeuron",
    "Surrogate",
    "get_surrogate",
    "list_surrogates",
    "membrane_readout",
    "neuron_multistep",
    "neuron_step",
]
