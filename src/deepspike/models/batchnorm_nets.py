"""VGG- and ResNet-style nets with batch-norm and biases: the ordinary ANNs users train and convert.

Bu et al. (ICLR 2022, QCFS) convert VGG-16 and ResNet-18/20 trained with batch-norm, biases and average
pooling (max pooling replaced); these families give the same building blocks at any size:

* ``vgg``: per block 3x3 same-padding convs (``conv -> BN -> act``), then a 2x2 pool (``pool`` "avg" or
  "max"); then ``hidden`` fully connected layers and the classifier, all with biases.
* ``resnet``: a 3x3 stem conv, basic units ``act(BN(conv3(act(BN(conv3 x)))) + shortcut(x))`` with an
  identity shortcut, or a 1x1 conv + BN where a stage changes the shape; global average pool; classifier.
  ``connect`` (add, and, iand) makes the units SEW blocks (Fang et al., NeurIPS 2021):
  ``g(act(BN(conv3(act(BN(conv3 x))))), S)`` with ``S = x`` or ``act(BN(conv1 x))`` (``models.layer_specs``).

``batch_norm=False`` gives the same nets with plain biased convs (the BN-free baseline).
"""

from __future__ import annotations

from collections.abc import Sequence

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.models.blocks import global_pool_classifier
from deepspike.models.layer_specs import Conv, Dropout, Flatten, Layer, Linear, Pool, Residual
from deepspike.models.registry import register_model, scaled

POOLS = ("avg", "max")


def bn_conv(channels: int, kernel: int, stride: int, batch_norm: bool, act: bool = True) -> Conv:
    """``kernel x kernel`` conv with same padding; BN (bias-free conv) or a bias."""
    return Conv(channels, kernel, stride, kernel // 2, act=act, bias=not batch_norm, norm=batch_norm)


def _head(num_classes: int, hidden: Sequence[int], width: float, dropout: float) -> list[Layer]:
    layers: list[Layer] = [Flatten()]
    for h in hidden:
        layers.append(Linear(scaled(int(h), width), bias=True))
        if dropout:
            layers.append(Dropout(dropout))
    return [*layers, Linear(num_classes, act=False, bias=True)]


def _check(pool: str, dropout: float) -> None:
    if pool not in POOLS:
        raise unknown_choice("pool", pool, POOLS)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model dropout must be in [0, 1), got {dropout}")


@register_model("vgg", default_input_shape=(1, 28, 28), paper="VGG-style with batch-norm (Bu et al. 2022)")
def vgg(
    num_classes,
    input_shape,
    width,
    blocks: Sequence[Sequence[int]] = ((32, 32), (64, 64)),
    hidden: Sequence[int] = (128,),
    batch_norm: bool = True,
    pool: str = "avg",
    dropout: float = 0.0,
):
    """Blocks of 3x3 convs (+BN), each block ending in a 2x2 ``pool``; then ``hidden`` FC layers and K outputs."""
    _check(pool, dropout)
    if not blocks or any(not block for block in blocks):
        raise ConfigError(f"vgg blocks must be a non-empty list of non-empty lists, got {blocks}")
    layers: list[Layer] = []
    for block in blocks:
        layers += [bn_conv(scaled(int(c), width), 3, 1, batch_norm) for c in block]
        layers.append(Pool(pool, 2))
    return (*layers, *_head(num_classes, hidden, width, dropout))


def _unit(c_in: int, c_out: int, stride: int, batch_norm: bool, connect: str | None) -> Residual:
    sew = connect is not None  # a SEW block joins spikes: its branches end in activated layers
    body = (bn_conv(c_out, 3, stride, batch_norm), bn_conv(c_out, 3, 1, batch_norm, act=sew))
    if stride == 1 and c_in == c_out:
        return Residual(body, connect=connect)
    return Residual(body, (bn_conv(c_out, 1, stride, batch_norm, act=sew),), connect)


@register_model("resnet", default_input_shape=(1, 28, 28), paper="ResNet-style with batch-norm (Bu et al. 2022)")
def resnet(
    num_classes,
    input_shape,
    width,
    stem: int = 16,
    stages: Sequence[int] = (16, 32, 64),
    blocks: Sequence[int] = (1, 1, 1),
    batch_norm: bool = True,
    connect: str | None = None,
):
    """3x3 stem, ``blocks[i]`` basic units of ``stages[i]`` channels (stride 2 at each later stage's first
    unit), global average pool, K outputs; ``connect``: SEW units (module docstring)."""
    if len(blocks) != len(stages) or any(int(b) < 1 for b in blocks) or not stages:
        raise ConfigError(f"resnet blocks must list {len(stages)} positive counts (one per stage), got {blocks}")
    c = scaled(int(stem), width)
    layers: list[Layer] = [bn_conv(c, 3, 1, batch_norm)]
    for i, (channels, count) in enumerate(zip(stages, blocks, strict=True)):
        c_out = scaled(int(channels), width)
        for j in range(int(count)):
            layers.append(_unit(c, c_out, 2 if (i > 0 and j == 0) else 1, batch_norm, connect))
            c = c_out
    return global_pool_classifier("resnet", layers, input_shape, num_classes)


VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))  # VGG-D
# VGG-11 (VGG-A) is ``models.direct_training.vgg11``.


@register_model("vgg16", default_input_shape=(3, 32, 32), paper="VGG-16 (VGG-D) layout, CIFAR-sized")
def vgg16(num_classes, input_shape, width, batch_norm: bool = True, pool: str = "max", dropout: float = 0.0):
    """VGG-16 convs (``vgg`` with blocks 64x2 / 128x2 / 256x3 / 512x3 / 512x3), each block pooled, then the
    classifier."""
    return vgg(num_classes, input_shape, width, VGG16_BLOCKS, (), batch_norm, pool, dropout)


@register_model("resnet18", default_input_shape=(3, 32, 32), paper="ResNet-18 layout, CIFAR-sized (He et al. 2016)")
def resnet18(num_classes, input_shape, width, batch_norm: bool = True):
    """ResNet-18 (``resnet`` with a 64-channel stem and 2 basic units in each of the 64/128/256/512 stages)."""
    return resnet(num_classes, input_shape, width, 64, (64, 128, 256, 512), (2, 2, 2, 2), batch_norm)
