"""Networks for sequences ``[T, F]`` (spike trains of audio channels such as SHD/SSC, or any time series).

Each sample is one feature vector per time step (per-sample input shape ``(F,)``; the time axis is the method's),
so the layers are fully connected. Two ways to give the network a memory of past steps beyond its neurons'
membranes: recurrent layers (``Linear(recurrent=True)``, ``rsnn``: Cramer et al. 2020's recurrent LIF networks for
SHD) or learnable synaptic delays (``Linear(delays=D)``, ``dsnn``: Hammouamri et al. 2024, feed-forward).
"""

from __future__ import annotations

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.models.blocks import check_spike_delay, hidden_sizes
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import Dropout, Flatten, Layer, Linear


@register_model("rsnn", default_input_shape=(700,), paper="Cramer et al. 2020 (SHD, recurrent LIF)")
def rsnn(num_classes, input_shape, width, hidden: tuple[int, ...] | list[int] = (256,), recurrent: bool = True,
         dropout: float = 0.0, spike_delay: int = 0):
    """Recurrent spiking net: input (F,)-hidden...-classes, each hidden layer recurrent (``recurrent=false``: a
    feed-forward net of the same sizes); ``spike_delay: 1``: each hidden layer's spikes reach the next layer one
    step late, Xylo's timing (``layers.spike_delay``; its own feedback is one step late already; method stbp)."""
    if not isinstance(recurrent, bool):
        raise ConfigError(f"rsnn recurrent must be true or false, got {recurrent!r}")
    delay = check_spike_delay("rsnn", spike_delay)
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    for h in hidden_sizes("rsnn", hidden, at_least_one=True):
        layers.append(Linear(scaled(h, width), recurrent=recurrent, spike_delay=delay))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Linear(num_classes, act=False))
    return tuple(layers)


@register_model("dsnn", default_input_shape=(140,), paper="Hammouamri et al. 2024 (learnable delays, SHD)")
def dsnn(num_classes, input_shape, width, hidden: tuple[int, ...] | list[int] = (256, 256), delays: int = 25,
         dropout: float = 0.0, batch_norm: bool = False):
    """Feed-forward spiking net with learnable synaptic delays on every layer (``layers.delays``): input (F,)-
    hidden...-classes, each synapse delayed by 0 to ``delays - 1`` steps (the paper's SHD setting: 700 channels
    pooled by 5 into 140, 10 ms steps, two hidden layers of 256, delays up to 250 ms = 25 steps, dropout 0.4,
    batch-norm). ``delays=1`` is the same net without delays, for an ablation."""
    if not is_whole(delays, 1, 1024):
        raise ConfigError(f"dsnn delays must be a whole number of steps from 1 to 1024, got {delays!r}")
    if not isinstance(batch_norm, bool):
        raise ConfigError(f"dsnn batch_norm must be true or false, got {batch_norm!r}")
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    for h in hidden_sizes("dsnn", hidden, at_least_one=True):
        layers.append(Linear(scaled(h, width), norm=batch_norm, delays=delays))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Linear(num_classes, act=False, delays=delays))
    return tuple(layers)
