"""Nets of the direct-training literature, for ``stbp``-style training with ``method.norm`` (bn, tdbn, tebn).

* ``sew_resnet18`` (3x32x32): ResNet-18's layout on CIFAR-sized input (3x3 stem of 64, stages 64-128-256-512
  with two units each, global average pool) with SEW units (Fang et al., NeurIPS 2021; ``connect`` add,
  and, iand; ``models.batchnorm_nets.resnet``). ``sew_resnet`` (1x28x28): the same family at 32-64-128, one
  unit per stage.
* ``ms_resnet18`` (3x32x32): ResNet-18's layout with membrane-shortcut units (MS-ResNet, Hu et al., "Advancing
  Spiking Neural Networks towards Deep Residual Learning", TNNLS 2024; SpikingJelly 2.0's ``MSResNet``): a conv-BN
  stem without a neuron, units ``x + BN(conv3(SN(BN(conv3(SN(x))))))`` whose shortcut is the identity or, where a
  stage changes the shape, a 1x1 conv + BN of the currents, then a neuron, the global average pool and the
  classifier. The stream between units carries currents (``models.layer_specs.Activation``). Defaults: the CIFAR
  layout of ``sew_resnet18`` (3x3 stem of 64, stride 1); ``stem_kernel: 7, stem_stride: 2, first_stride: 2`` give
  the ImageNet layout of SpikingJelly's ``ms_resnet18`` (``blocks: [3, 4, 6, 3]``: MS-ResNet-34). Its batch-norms
  start as that code's (``Conv.norm_scale``): weights 0.5, the last of each unit 0, so that every unit begins as
  the identity (``bn_init: false``: the method's own initialisation).
* ``vgg11`` (3x32x32, or 1x28x28): VGG-11's convolutions (configuration A: 64, 128, 256x2, 512x2, 512x2, each
  3x3 + BN, a 2x2 pool after each group while the map is at least 2x2: five pools at 32x32, four at
  28x28), then one linear classifier on the flattened map (our choice: the 4096-4096 head of the ImageNet VGG
  adds about 19 M weights to a 1x1x512 map).
* ``fang2021_fmnist`` (1x28x28): the Fashion-MNIST/MNIST net of the PLIF paper (Fang et al., ICCV 2021, as in
  its public code): {128C3 (no bias) - BN - neuron - MP2} x 2, dropout 0.5, FC 6272 -> 2048 - neuron,
  dropout 0.5, FC 2048 -> classes (the paper's 100 voting neurons: ``method.vote_group: 10``).
"""

from __future__ import annotations

from collections.abc import Sequence

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.models.batchnorm_nets import POOLS, bn_conv, resnet
from deepspike.models.blocks import global_pool_classifier
from deepspike.models.layer_specs import Activation, Conv, Dropout, Flatten, Layer, Linear, Pool, Residual
from deepspike.models.registry import register_model, scaled

VGG11 = ((64,), (128,), (256, 256), (512, 512), (512, 512))


@register_model("sew_resnet18", default_input_shape=(3, 32, 32), paper="SEW-ResNet (Fang et al. 2021), ResNet-18")
def sew_resnet18(num_classes, input_shape, width, connect: str = "add", batch_norm: bool = True):
    """SEW-ResNet-18 for 32x32 input: 3x3 stem 64, 2+2+2+2 SEW units of 64-128-256-512, global pool."""
    return resnet(num_classes, input_shape, width, stem=64, stages=(64, 128, 256, 512), blocks=(2, 2, 2, 2),
                  batch_norm=batch_norm, connect=connect)


@register_model("sew_resnet", default_input_shape=(1, 28, 28), paper="SEW-ResNet (Fang et al. 2021), small")
def sew_resnet(num_classes, input_shape, width, stages: Sequence[int] = (32, 64, 128),
               blocks: Sequence[int] = (1, 1, 1), connect: str = "add", batch_norm: bool = True):
    """Small SEW-ResNet: 3x3 stem, ``blocks[i]`` SEW units of ``stages[i]`` channels, global pool."""
    return resnet(num_classes, input_shape, width, stem=stages[0], stages=stages, blocks=blocks,
                  batch_norm=batch_norm, connect=connect)


def _ms_unit(c_in: int, c_out: int, stride: int, scales: tuple[float, float]) -> Residual:
    """``x + BN(conv3(SN(BN(conv3(SN(x))))))``, the shortcut a 1x1 conv + BN of ``x`` where the shape changes;
    ``scales``: the initial batch-norm weights (``Conv.norm_scale``), the unit's last and every other."""
    last, other = scales
    body = (Activation(), Conv(c_out, 3, stride, 1, norm=True, act=False, norm_scale=other),
            Activation(), Conv(c_out, 3, 1, 1, norm=True, act=False, norm_scale=last))
    shortcut = () if stride == 1 and c_in == c_out else (
        Conv(c_out, 1, stride, norm=True, act=False, norm_scale=other),)
    return Residual(body, shortcut, connect="add")


@register_model("ms_resnet18", default_input_shape=(3, 32, 32), paper="MS-ResNet (Hu et al. 2024), ResNet-18")
def ms_resnet18(num_classes, input_shape, width, blocks: Sequence[int] = (2, 2, 2, 2),
                stages: Sequence[int] = (64, 128, 256, 512), stem_kernel: int = 3, stem_stride: int = 1,
                first_stride: int = 1, bn_init: bool = True):
    """MS-ResNet (module docstring): conv-BN stem, ``blocks[i]`` membrane-shortcut units of ``stages[i]`` channels
    (stride 2 at each later stage's first unit, ``first_stride`` at the first stage's), neuron, global pool."""
    if len(blocks) != len(stages) or not stages or any(not isinstance(b, int) or b < 1 for b in blocks):
        raise ConfigError(f"ms_resnet18: blocks must list {len(stages)} whole numbers >= 1 (one per stage), "
                          f"got {blocks!r}")
    scales = (0.0, 0.5) if bn_init else (1.0, 1.0)
    c = scaled(int(stages[0]), width)
    layers: list[Layer] = [Conv(c, stem_kernel, stem_stride, stem_kernel // 2, norm=True, act=False,
                                norm_scale=scales[1])]
    for i, (channels, count) in enumerate(zip(stages, blocks, strict=True)):
        c_out = scaled(int(channels), width)
        for j in range(count):
            layers.append(_ms_unit(c, c_out, (2 if i > 0 else first_stride) if j == 0 else 1, scales))
            c = c_out
    return global_pool_classifier("ms_resnet18", [*layers, Activation()], input_shape, num_classes)


@register_model("vgg11", default_input_shape=(3, 32, 32), paper="VGG-11 (config A) with BN, spiking")
def vgg11(num_classes, input_shape, width, batch_norm: bool = True, pool: str = "avg"):
    """VGG-11 convs with BN, 2x2 ``pool`` after each group while the map is >= 2x2, one linear classifier."""
    if pool not in POOLS:
        raise unknown_choice("pool", pool, POOLS)
    layers: list[Layer] = []
    size = min(input_shape[1:], default=0)  # a flat input: no pools, and the first conv refuses it in one line
    for group in VGG11:
        layers += [bn_conv(scaled(c, width), 3, 1, batch_norm) for c in group]
        if size >= 2:
            layers.append(Pool(pool, 2))
            size //= 2
    return (*layers, Flatten(), Linear(num_classes, act=False, bias=True))


@register_model("fang2021_fmnist", default_input_shape=(1, 28, 28), paper="PLIF (Fang et al. 2021) F-MNIST net")
def fang2021_fmnist(num_classes, input_shape, width, batch_norm: bool = True, dropout: float = 0.5):
    """PLIF paper's (F-)MNIST net: {128C3-BN-neuron-MP2} x 2, DP, FC 2048, DP, FC classes (bias-free)."""
    c = scaled(128, width)
    conv = [Conv(c, 3, padding=1, norm=batch_norm, bias=not batch_norm), Pool("max", 2)]
    drop = [Dropout(dropout)] if dropout else []
    hidden = scaled(128 * 4 * 4, width)
    return (*conv, *conv, Flatten(), *drop, Linear(hidden), *drop, Linear(num_classes, act=False))
