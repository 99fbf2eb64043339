"""Architecture specs: what a network is, independent of how a method builds it.

A model in the registry is a function returning a tuple of layer specs. Every method (``ann``, ``stbp``,
``spikebp``, ``ttfs``, ``stdbp``, conversion) turns the same spec into its own kind of network, so one name,
e.g. ``"vgg9"``, means the same topology for every method, and analysis (MACs, synaptic operations, NIR
export) can walk the spec without knowing the method.

Conventions:
- ``Conv`` and ``Linear`` with ``act=True`` are followed by the method's nonlinearity (ReLU, a spiking
  neuron, a TTFS layer's firing). The final classifier layer has ``act=False``: the method decides
  the readout.
- ``Residual``: ``out = act(body(x) + shortcut(x))``; an empty shortcut is the identity.
- ``Concat``: the branches run on the same input; their outputs are concatenated on the channel axis.
Shapes are per sample: ``(C, H, W)`` for images, ``(F,)`` after ``Flatten``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from deepspike.core.errors import ConfigError, check_pool_padding


@dataclass(frozen=True)
class Conv:
    """2-D convolution, bias-free by default (the papers' nets are bias-free or use bias spikes)."""

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    act: bool = True
    bias: bool = False


@dataclass(frozen=True)
class Linear:
    """Fully connected layer; ``act=False`` marks the classifier output."""

    out_features: int
    act: bool = True
    bias: bool = False


@dataclass(frozen=True)
class Pool:
    """Spatial pooling; ``kind`` is ``"avg"`` or ``"max"``; ``stride`` defaults to ``kernel_size``.

    ``padding`` p (each side, ``0 <= p <= kernel_size // 2`` so every window holds a real input) means "no
    input" there: ``-inf`` for an ANN max, a zero counted in the ``1/k^2`` average (``count_include_pad``),
    no spike (``+inf`` time) in a TTFS net. Output size is floor mode, ``H' = floor((H + 2p - k) / s) + 1``
    (torchvision's GoogLeNet uses ceil mode; with p = 1 floor gives the same sizes at 224 x 224).
    """

    kind: str
    kernel_size: int
    stride: int | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("avg", "max"):
            raise ConfigError(f"unknown pool kind {self.kind!r}; valid: avg, max")
        if self.kernel_size < 1 or (self.stride is not None and self.stride < 1):
            raise ConfigError(f"{self}: kernel_size and stride must be >= 1")
        check_pool_padding(self.padding, self.kernel_size, str(self))

    @property
    def step(self) -> int:
        return self.stride or self.kernel_size


@dataclass(frozen=True)
class Flatten:
    """``(C, H, W) -> (C*H*W,)``."""


@dataclass(frozen=True)
class Dropout:
    """Dropout with drop probability ``p`` (rate-coded methods keep one mask for all time steps)."""

    p: float


@dataclass(frozen=True)
class Residual:
    """``act(body(x) + shortcut(x))``; ``shortcut=()`` is the identity (type A when shapes match)."""

    body: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] = ()


@dataclass(frozen=True)
class Concat:
    """Parallel branches on one input, outputs concatenated on the channel axis (inception block)."""

    branches: tuple[tuple[Layer, ...], ...]


Layer = Union[Conv, Linear, Pool, Flatten, Dropout, Residual, Concat]  # noqa: UP007 (runtime alias)
Shape = tuple[int, ...]


def output_shape(layer: Layer, shape: Shape) -> Shape:
    """Per-sample output shape of ``layer`` for per-sample input ``shape``.

    Conv/pool: ``H' = floor((H + 2 p - k) / s) + 1``. Raises ``ConfigError`` when a layer does not fit
    its input (e.g. a convolution on a flattened vector, a kernel larger than the map).
    """
    if isinstance(layer, Conv):
        c, h, w = _image(shape, layer)
        ho = (h + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
        wo = (w + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
        return _positive((layer.out_channels, ho, wo), layer, shape)
    if isinstance(layer, Pool):
        c, h, w = _image(shape, layer)
        ho = (h + 2 * layer.padding - layer.kernel_size) // layer.step + 1
        wo = (w + 2 * layer.padding - layer.kernel_size) // layer.step + 1
        return _positive((c, ho, wo), layer, shape)
    if isinstance(layer, Linear):
        if len(shape) != 1:
            raise ConfigError(
                f"Linear({layer.out_features}) needs a flat input, got shape {shape}; add Flatten()"
            )
        return (layer.out_features,)
    if isinstance(layer, Flatten):
        n = 1
        for d in shape:
            n *= d
        return (n,)
    if isinstance(layer, Dropout):
        return shape
    if isinstance(layer, Residual):
        body = sequence_shape(layer.body, shape)
        short = sequence_shape(layer.shortcut, shape)
        if body != short:
            raise ConfigError(f"residual branches disagree: body gives {body}, shortcut gives {short}")
        return body
    if isinstance(layer, Concat):
        outs = [sequence_shape(b, shape) for b in layer.branches]
        if any(o[1:] != outs[0][1:] for o in outs):
            raise ConfigError(f"concat branches disagree on spatial size: {outs}")
        return (sum(o[0] for o in outs), *outs[0][1:])
    raise ConfigError(f"unknown layer spec {layer!r}")


def sequence_shape(layers: tuple[Layer, ...], shape: Shape) -> Shape:
    """Output shape after applying ``layers`` in order."""
    for layer in layers:
        shape = output_shape(layer, shape)
    return shape


def _image(shape: Shape, layer: Layer) -> Shape:
    if len(shape) != 3:
        raise ConfigError(f"{type(layer).__name__} needs an image input (C, H, W), got shape {shape}")
    return shape


def _positive(out: Shape, layer: Layer, shape: Shape) -> Shape:
    if min(out) <= 0:
        raise ConfigError(f"{layer} does not fit input shape {shape} (output would be {out})")
    return out


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
