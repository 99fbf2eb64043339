"""Input encoders (rate, bipolar, direct, TTFS latency, delta modulation) and output decoders.

Rate-coded tensors are time-first ``[T, B, ...]``; TTFS tensors hold spike times ``[B, ...]`` with
``+inf`` for "no spike".
"""

from deepspike.coding.decoders import (
    final_membrane_rate,
    first_spike_class,
    first_spike_time,
    mean_membrane,
    spike_count,
    vote,
)
from deepspike.coding.delta import DELTA_MODES, delta_modulation
from deepspike.coding.latency import TTFS_MODES, latency_spike_train, ttfs_latency
from deepspike.coding.rate import direct, rate_bipolar, rate_poisson, time_invariant
from deepspike.coding.rng import as_generator

__all__ = [
    "DELTA_MODES",
    "TTFS_MODES",
    "as_generator",
    "delta_modulation",
    "direct",
    "final_membrane_rate",
    "first_spike_class",
    "first_spike_time",
    "latency_spike_train",
    "mean_membrane",
    "rate_bipolar",
    "rate_poisson",
    "spike_count",
    "time_invariant",
    "ttfs_latency",
    "vote",
]
