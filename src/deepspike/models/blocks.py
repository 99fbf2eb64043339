"""Layer-spec building blocks shared by the model families."""

from __future__ import annotations

from collections.abc import Sequence

from deepspike.core.errors import ConfigError
from deepspike.core.options import is_whole
from deepspike.models.registry import scaled
from deepspike.models.spec import Dropout, Flatten, Layer, Linear, Pool, sequence_shape


def check_spike_delay(model: str, spike_delay) -> int:
    """``spike_delay`` (a recipe's ``model.args.spike_delay``) as 0 or 1; anything else is a one-line ``ConfigError``
    naming ``model``."""
    if not is_whole(spike_delay, 0, 1):
        raise ConfigError(f"model {model!r}: bad value {spike_delay!r} for model.args.spike_delay: expected 0 (none) "
                          "or 1 (each hidden layer's spikes reach the next layer one step late, as on Xylo)")
    return spike_delay


def hidden_sizes(model: str, hidden, at_least_one: bool = False) -> tuple[int, ...]:
    """``hidden`` (a recipe's ``model.args.hidden``) as layer sizes: a list of whole numbers >= 1 (and not empty
    when ``at_least_one``); anything else is a one-line ``ConfigError`` naming ``model``."""
    sizes = list(hidden) if isinstance(hidden, Sequence) and not isinstance(hidden, str) else None
    if sizes is None or not all(is_whole(h, 1) for h in sizes) or (
            at_least_one and not sizes):
        what = "a non-empty list" if at_least_one else "a list"
        raise ConfigError(f"{model} hidden sizes must be {what} of whole numbers >= 1, e.g. [128], got {hidden!r}")
    return tuple(sizes)


def classifier_head(num_classes: int, hidden: Sequence[int], width: float, dropout: float = 0.0,
                    bias: bool = False, spike_delay: int = 0) -> list[Layer]:
    """``Flatten``, then per hidden size ``Linear(scaled(h, width))`` (+ ``Dropout`` when ``dropout`` > 0),
    then the ``num_classes`` output layer (``act=False``: the method decides the readout); each ``Linear`` with a
    bias when ``bias``; each hidden one's spikes ``spike_delay`` steps late (``layer_specs.Linear``)."""
    layers: list[Layer] = [Flatten()]
    for h in hidden:
        layers.append(Linear(scaled(int(h), width), bias=bias, spike_delay=spike_delay))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Linear(num_classes, act=False, bias=bias))
    return layers


def global_pool_classifier(model: str, layers: Sequence[Layer], input_shape, num_classes: int,
                           pooled: Sequence[Layer] = (), bias: bool = True) -> tuple[Layer, ...]:
    """``layers``, then one average pool over their whole (square) output map, ``pooled`` (e.g. a neuron on the
    pooled currents), ``Flatten`` and the ``num_classes`` classifier (``act=False``; with ``bias``). A map that is not
    square is a one-line ``ConfigError`` naming ``model``."""
    _, h, w = sequence_shape(tuple(layers), tuple(input_shape))
    if h != w:
        raise ConfigError(f"{model} needs square maps before the global pool, got {h}x{w}")
    return (*layers, Pool("avg", h), *pooled, Flatten(), Linear(num_classes, act=False, bias=bias))
