"""Closed-form time-to-first-spike (TTFS) layers and an event-driven reference simulator.

``spike_times`` / ``spike_times_conv2d``: exact first spike times of non-leaky IF neurons with the
exponentially decaying synaptic current of zhou2021 (``kernel="exp"``) or the ReL-PSP of zhang2021
(``kernel="relpsp"``), with exact gradients. Spike times are ``[B, ...]`` tensors, ``+inf`` = no spike.

``max_pool_times`` / ``avg_pool_times``: pooling in the time domain. ``deepspike.ttfs.simulate``:
event-driven (and time-stepped) reference simulation of whole networks with the true membrane equations.

Bad input is refused, never computed silently: a NaN or -inf input time (only +inf means "no spike"), or a NaN or
infinite weight or bias, raises ``ConfigError`` in every layer function and module, on every backend (the scan is
part of what each backend already does: the native kernels while sorting, the others in ``_validate``). (The
rate neurons of ``deepspike.neurons`` propagate NaN instead, as they have no such scan.) float16/bfloat16 times
are computed in float32 and returned in their own dtype; an empty batch gives an empty result.
"""

from deepspike.ttfs.conv import spike_times_conv2d
from deepspike.ttfs.dense import spike_times
from deepspike.ttfs.pooling import avg_pool_times, max_pool_times

__all__ = ["avg_pool_times", "max_pool_times", "spike_times", "spike_times_conv2d"]
