"""ANN-to-SNN conversion (sengupta2019): IF networks, threshold balancing (max, percentile, SPIKE-NORM).

``deepspike.conversion.pipeline.convert_run`` converts a trained ``ann`` run directory; the converted run
directory evaluates with ``deepspike eval`` through the ``converted`` method.
"""

from deepspike.conversion.network import ConvertedNetwork, SignedPoissonEncoder, StopForward
from deepspike.conversion.neuron import ChunkedIF, carry_state, chunked_neurons
from deepspike.conversion.roles import neuron_roles

__all__ = [
    "ChunkedIF",
    "ConvertedNetwork",
    "SignedPoissonEncoder",
    "StopForward",
    "carry_state",
    "chunked_neurons",
    "neuron_roles",
]
