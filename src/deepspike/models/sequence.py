"""Networks for sequences ``[T, F]`` (spike trains of audio channels such as SHD/SSC, or any time series).

Each sample is one feature vector per time step (per-sample input shape ``(F,)``; the time axis is the method's),
so the layers are fully connected; recurrent layers (``Linear(recurrent=True)``) give the network a memory of
past steps beyond its neurons' membranes, the usual model for SHD (Cramer et al. 2020, recurrent LIF networks).
"""

from __future__ import annotations

from deepspike.core.errors import ConfigError
from deepspike.models.blocks import hidden_sizes
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import Dropout, Flatten, Layer, Linear


@register_model("rsnn", default_input_shape=(700,), paper="Cramer et al. 2020 (SHD, recurrent LIF)")
def rsnn(num_classes, input_shape, width, hidden: tuple[int, ...] | list[int] = (256,), recurrent: bool = True,
         dropout: float = 0.0):
    """Recurrent spiking net: input (F,)-hidden...-classes, each hidden layer recurrent (``recurrent=false``: a
    feed-forward net of the same sizes)."""
    if not isinstance(recurrent, bool):
        raise ConfigError(f"rsnn recurrent must be true or false, got {recurrent!r}")
    layers: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    for h in hidden_sizes("rsnn", hidden, at_least_one=True):
        layers.append(Linear(scaled(h, width), recurrent=recurrent))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Linear(num_classes, act=False))
    return tuple(layers)
