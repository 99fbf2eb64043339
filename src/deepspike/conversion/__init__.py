"""ANN-to-SNN conversion (sengupta2019): IF networks, threshold balancing (max, percentile, SPIKE-NORM).

``deepspike.conversion.pipeline.convert_run`` converts a trained ``ann`` run directory; the converted run
directory evaluates with ``deepspike eval`` through the ``converted`` method.
"""

from deepspike.conversion.roles import neuron_roles
from deepspike.methods.converted_network import ConvertedNetwork, SignedPoissonEncoder, StopForward
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.chunked_if import ChunkedIF, chunked_neurons

__all__ = [
    "ChunkedIF",
    "ConvertedNetwork",
    "SignedPoissonEncoder",
    "StopForward",
    "temporal_carry",
    "chunked_neurons",
    "neuron_roles",
]
