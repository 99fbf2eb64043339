"""sengupta2019's constrained ANNs for ANN-to-SNN conversion: VGG-16, ResNet-20/34 and small VGG-style nets.

Constraints (paper section 4.3 and 7.1): no bias, no batch-norm, ReLU after every weighted layer but the
classifier, average pooling only, dropout after every ReLU that is not followed by pooling (VGG) or only
on the ReLUs of the residual (non-identity) paths (ResNet). Residual units follow section 6: a ReLU at
every junction, identity shortcuts, and the first (7x7) convolution replaced by three 3x3 convolutions,
the first two of which are plain (non-residual) pre-processing layers.

Type-A shortcuts where a stage doubles the channels and halves the map: the spec has no zero-padding
layer, so the parameter-free shortcut here subsamples (1x1 average pooling, stride 2) and *duplicates*
the channels (``Concat`` of two identical subsampled copies) instead of padding them with zeros. It stays
an identity-like path without weights; ``shortcut="B"`` uses 1x1 projection convolutions instead.
"""

from __future__ import annotations

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.models.blocks import classifier_head, global_pool_classifier
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import (
    Concat,
    Conv,
    Dropout,
    Layer,
    Pool,
    Residual,
)

VGG16_CONVS = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")
HEADS = {"cifar": (512,), "imagenet": (4096, 4096)}
SHORTCUTS = ("A", "B")


def _vgg_features(plan, width: float, dropout: float) -> list[Layer]:
    """3x3 same-padding convs; ``"P"`` is a 2x2 average pool; dropout after convs not followed by a pool."""
    layers: list[Layer] = []
    for i, item in enumerate(plan):
        if item == "P":
            layers.append(Pool("avg", 2))
            continue
        layers.append(Conv(scaled(int(item), width), 3, padding=1))
        followed_by_pool = i + 1 < len(plan) and plan[i + 1] == "P"
        if dropout and not followed_by_pool:
            layers.append(Dropout(dropout))
    return layers


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model dropout must be in [0, 1), got {dropout}")


@register_model("sengupta_vgg16", default_input_shape=(3, 32, 32), paper="sengupta2019 Tables 1-2")
def sengupta_vgg16(num_classes, input_shape, width, head: str = "cifar", dropout: float = 0.2):
    """VGG-16, no BN/bias, avg pools: 13 convs + ``head`` "cifar" (512-K) or "imagenet" (4096-4096-K)."""
    if head not in HEADS:
        raise unknown_choice("VGG-16 head", head, HEADS)
    _check_dropout(dropout)
    return (
        *_vgg_features(VGG16_CONVS, width, dropout),
        *classifier_head(num_classes, HEADS[head], width, dropout),
    )


@register_model("sengupta_vgg_small", default_input_shape=(1, 28, 28), paper="sengupta2019-style (small)")
def sengupta_vgg_small(
    num_classes,
    input_shape,
    width,
    blocks: list | tuple = ((32, 32), (64, 64)),
    hidden: list | tuple = (128,),
    dropout: float = 0.1,
):
    """VGG-style constrained net: per block 3x3 convs then AP2 (default 32C3-32C3-AP2-64C3-64C3-AP2-128-K)."""
    _check_dropout(dropout)
    if not blocks or any(not block for block in blocks):
        raise ConfigError(
            f"sengupta_vgg_small blocks must be a non-empty list of non-empty lists, got {blocks}"
        )
    plan: list = []
    for block in blocks:
        plan.extend(int(c) for c in block)
        plan.append("P")
    return (*_vgg_features(plan, width, dropout), *classifier_head(num_classes, hidden, width, dropout))


def _block(c_in: int, c_out: int, stride: int, shortcut: str, dropout: float) -> Residual:
    """Basic unit: ``relu(conv3(drop(relu(conv3(x)))) + shortcut(x))``; the spec adds the junction ReLU."""
    body: tuple[Layer, ...] = (
        Conv(c_out, 3, stride=stride, padding=1),
        *((Dropout(dropout),) if dropout else ()),
        Conv(c_out, 3, padding=1, act=False),
    )
    if stride == 1 and c_in == c_out:
        return Residual(body)
    if shortcut == "B":
        return Residual(body, (Conv(c_out, 1, stride=stride, act=False),))
    if c_out != 2 * c_in:
        raise ConfigError(
            f"type-A shortcut needs the channels to double ({c_in} -> {c_out}); use shortcut='B'"
        )
    sub = (Pool("avg", 1, stride),)  # 1x1 average pool with stride s = subsampling
    return Residual(body, (Concat((sub, sub)),))  # [C, H, W] -> [2C, H/s, W/s]


def _resnet(
    num_classes,
    input_shape,
    width,
    stem: tuple[int, int],
    stages,
    blocks,
    shortcut: str,
    dropout: float,
    stem_pool: bool,
) -> tuple[Layer, ...]:
    if shortcut not in SHORTCUTS:
        raise unknown_choice("shortcut type", shortcut, SHORTCUTS)
    _check_dropout(dropout)
    if len(blocks) != len(stages) or any(int(b) < 1 for b in blocks):
        raise ConfigError(
            f"resnet blocks must list {len(stages)} positive counts (one per stage), got {list(blocks)}"
        )
    stem_channels, stem_stride = stem
    c = scaled(stem_channels, width)
    # Three 3x3 convs replace the 7x7 stem; the first two are plain pre-processing layers (section 6.3).
    layers: list[Layer] = [
        Conv(c, 3, stride=stem_stride, padding=1),
        Conv(c, 3, padding=1),
        Conv(c, 3, padding=1),
    ]
    if stem_pool:
        layers.append(Pool("avg", 2))
    for i, (channels, count) in enumerate(zip(stages, blocks, strict=True)):
        c_out = scaled(channels, width)
        for j in range(int(count)):
            stride = 2 if (i > 0 and j == 0) else 1
            layers.append(_block(c, c_out, stride, shortcut, dropout))
            c = c_out
    return global_pool_classifier("resnet", layers, input_shape, num_classes, bias=False)


@register_model("sengupta_resnet20", default_input_shape=(3, 32, 32), paper="sengupta2019 Table 3 (CIFAR-10)")
def sengupta_resnet20(
    num_classes,
    input_shape,
    width,
    blocks: list | tuple = (3, 3, 3),
    shortcut: str = "A",
    dropout: float = 0.1,
):
    """ResNet-20 (16-32-64, 3 units per stage) with three 3x3 stem convs, junction ReLUs, global avg pool."""
    return _resnet(num_classes, input_shape, width, (16, 1), (16, 32, 64), blocks, shortcut, dropout, False)


@register_model(
    "sengupta_resnet34", default_input_shape=(3, 224, 224), paper="sengupta2019 Table 3 (ImageNet)"
)
def sengupta_resnet34(
    num_classes,
    input_shape,
    width,
    blocks: list | tuple = (3, 4, 6, 3),
    shortcut: str = "A",
    dropout: float = 0.1,
):
    """ResNet-34 (64-128-256-512; 3-4-6-3 units); stem 3x3/2, 3x3, 3x3 + AP2 instead of 7x7/2 + max pool."""
    return _resnet(
        num_classes, input_shape, width, (64, 2), (64, 128, 256, 512), blocks, shortcut, dropout, True
    )
