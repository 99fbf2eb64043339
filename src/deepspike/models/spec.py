"""Architecture specs: what a network is, independent of how a method builds it.

A model in the registry is a function returning a tuple of layer specs (``models.layer_specs``: ``Conv``,
``Linear``, ``Pool``, ``Flatten``, ``Dropout``, ``Attention``, ``Activation``, ``Residual``, ``Concat``; their
conventions are documented there). Every method (``ann``, ``stbp``, ``spikebp``, ``ttfs``, ``stdbp``, conversion) turns
the same spec into its own kind of network, so one name, e.g. ``"vgg9"``, means the same topology for every method, and
analysis (MACs, synaptic operations, NIR export) can walk the spec (``models.walk``) without knowing the
method. Shapes are per sample: ``(C, H, W)`` for images, ``(F,)`` after ``Flatten``.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepspike.core.errors import ConfigError
from deepspike.models.layer_specs import (
    Activation,
    Attention,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Layer,
    Linear,
    Pool,
    Residual,
    Shape,
)
from deepspike.models.walk import SpecFold, Visit, visits, walk

__all__ = [  # the layer specs are re-exported: ``from deepspike.models.spec import Conv`` keeps working
    "Activation", "Architecture", "Attention", "Concat", "Conv", "Dropout", "Flatten", "Layer", "Linear", "Pool",
    "Residual", "Shape",
    "output_shape", "sequence_shape",
]


def output_shape(layer: Layer, shape: Shape) -> Shape:
    """Per-sample output shape of ``layer`` (a block included) for per-sample input ``shape``.

    Conv/pool: ``H' = floor((H + 2 p - k) / s) + 1`` (``models.shapes``). Raises ``ConfigError`` when a layer
    does not fit its input (e.g. a convolution on a flattened vector, a kernel larger than the map).
    """
    return sequence_shape((layer,), shape)


def sequence_shape(layers: tuple[Layer, ...], shape: Shape) -> Shape:
    """Output shape after applying ``layers`` in order."""
    return walk(layers, shape, SpecFold())[1]


@dataclass(frozen=True)
class Architecture:
    """A named network topology for a given input shape and number of classes."""

    name: str
    layers: tuple[Layer, ...]
    input_shape: Shape
    num_classes: int

    def __post_init__(self) -> None:
        out = sequence_shape(self.layers, self.input_shape)
        if out != (self.num_classes,):
            raise ConfigError(
                f"model {self.name!r} ends in shape {out}, expected ({self.num_classes},) for the classes"
            )

    def visits(self) -> list[Visit]:
        """Every layer in execution order, blocks right after their branches (``models.walk.visits``)."""
        return visits(self.layers, self.input_shape)

    def contains(self, kind: type) -> bool:
        """True when a layer of type ``kind`` sits anywhere in the spec (e.g. ``Residual``)."""
        return any(isinstance(visit.layer, kind) for visit in self.visits())
