"""ANN-to-SNN conversion (sengupta2019): IF networks, threshold balancing (max, percentile, SPIKE-NORM).

``deepspike.conversion.pipeline.convert_run`` converts a trained ``ann`` run directory; the converted run
directory evaluates with ``deepspike eval`` through the ``converted`` method.
"""

from deepspike.conversion.roles import neuron_roles
from deepspike.methods.converted_network import ConvertedNetwork, SignedPoissonEncoder, StopForward
from deepspike.neurons.chunked_if import ChunkedIF, carry_state, chunked_neurons

__all__ = [
    "ChunkedIF",
    "ConvertedNetwork",
    "SignedPoissonEncoder",
    "StopForward",
    "carry_state",
    "chunked_neurons",
    "neuron_roles",
]
