"""zhou2021's TTFS networks (Table 1 and appendix B.2), as architecture specs.

``SCNN(k, c, s)`` = conv of c k x k kernels with stride s; TF "SAME" padding (``k // 2``) is assumed: it
reproduces the paper's weight counts (MNIST net 21K, SpikingVGG16 54M) and zhou2021's code pads. ``MP(2)``
= 2 x 2 max pooling (the earliest spike in a TTFS net); SpikingGoogLeNet keeps GoogLeNet's padded 3x3
pools. Every layer has a bias input spike at t = 0 when the method adds one (``ttfs``/``stdbp``
``bias: true``); the specs themselves are bias-free.
"""

from __future__ import annotations

from deepspike.core.errors import ConfigError
from deepspike.models.blocks import classifier_head
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import Concat, Conv, Dropout, Flatten, Layer, Linear, Pool, sequence_shape


def _scnn(channels: int, k: int, stride: int, width: float) -> Conv:
    return Conv(scaled(channels, width), k, stride=stride, padding=k // 2)


@register_model("zhou2021_mnist", default_input_shape=(1, 28, 28), paper="zhou2021 Table 1 (MNIST)")
def zhou2021_mnist(num_classes, input_shape, width):
    """zhou2021 MNIST net: SCNN(5,32,2)-SCNN(5,16,2)-FC(classes)."""
    return (_scnn(32, 5, 2, width), _scnn(16, 5, 2, width), *classifier_head(num_classes, (), width))


@register_model("zhou2021_cifar_small", default_input_shape=(3, 32, 32), paper="zhou2021 appendix B.2")
def zhou2021_cifar_small(num_classes, input_shape, width):
    """zhou2021 small CIFAR-10 net: SCNN(5,64,2)-SCNN(5,32,2)-SCNN(5,16,2)-FC(64)-FC(classes)."""
    convs = (_scnn(64, 5, 2, width), _scnn(32, 5, 2, width), _scnn(16, 5, 2, width))
    return (*convs, *classifier_head(num_classes, (64,), width))


@register_model("zhou2021_cifar_medium", default_input_shape=(3, 32, 32), paper="zhou2021 appendix B.2")
def zhou2021_cifar_medium(num_classes, input_shape, width):
    """zhou2021 medium CIFAR-10 net: SCNN(3,64,1)-SCNN(3,128,2)-SCNN(3,256,1)-SCNN(3,256,2)-FC(1024)x2-FC."""
    convs = tuple(_scnn(c, 3, s, width) for c, s in ((64, 1), (128, 2), (256, 1), (256, 2)))
    return (*convs, *classifier_head(num_classes, (1024, 1024), width))


VGG16_PLAN = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024))


@register_model("zhou2021_vgg16", default_input_shape=(3, 32, 32), paper="zhou2021 Table 1 (SpikingVGG16)")
def zhou2021_vgg16(num_classes, input_shape, width):
    """SpikingVGG16: 5 stages of SCNN(3,c,1) (64..1024 channels) each followed by MP(2), FC 4096-4096-512."""
    layers: list[Layer] = []
    for stage in VGG16_PLAN:
        layers += [_scnn(c, 3, 1, width) for c in stage]
        layers.append(Pool("max", 2))
    return (*layers, *classifier_head(num_classes, (4096, 4096, 512), width))


# GoogLeNet inception blocks: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection) (Szegedy et al. 2015)
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def inception(c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int, width: float) -> Concat:
    """Inception block of TTFS layers: GoogLeNet's four branches concatenated on channels (size kept).

    Branches: 1x1; 1x1 -> 3x3 (pad 1); 1x1 -> 5x5 (pad 2); 3x3/s1/p1 max pool -> 1x1 pool projection.
    ``[C, H, W] -> [c1 + c3 + c5 + cp, H, W]`` (channels scaled by ``width``). In a TTFS net the max pool
    is the earliest spike of the 3x3 neighbourhood and its padding is "no spike" (zhou2021 sec. 3.3).
    """
    s = lambda c: scaled(c, width)  # noqa: E731
    return Concat((
        (Conv(s(c1), 1),),
        (Conv(s(c3r), 1), Conv(s(c3), 3, padding=1)),
        (Conv(s(c5r), 1), Conv(s(c5), 5, padding=2)),
        (Pool("max", 3, stride=1, padding=1), Conv(s(cp), 1)),
    ))


def _googlenet_pool() -> Pool:
    """GoogLeNet's 3x3/s2 max pool; floor mode with padding 1 gives torchvision's ceil-mode sizes (112 -> 56)."""
    return Pool("max", 3, stride=2, padding=1)


@register_model("zhou2021_googlenet", default_input_shape=(3, 224, 224), paper="zhou2021 Table 1 (ImageNet)")
def zhou2021_googlenet(num_classes, input_shape, width, global_pool: str = "avg", dropout: float = 0.4):
    """SpikingGoogLeNet: GoogLeNet (Szegedy et al. 2015, no auxiliary heads) with SCNN/FC layers.

    conv 7x7/2 (64) -> MP 3x3/2 -> conv 1x1 (64) -> conv 3x3 (192) -> MP 3x3/2 -> 3a, 3b -> MP 3x3/2 ->
    4a..4e -> MP 3x3/2 -> 5a, 5b -> global pool -> dropout -> FC. Every max pool is 3x3/s2/p1 in floor mode
    (GoogLeNet's paper: 3x3/2; torchvision: ceil mode without padding, and 2x2 before 5a); at 224 x 224 the
    maps are 112 -> 56 -> 28 -> 14 -> 7, then a 7x7 global pool. Weights at width 1 with 1000 classes:
    6,990,272 (bias-free spec; ``ttfs``/``stdbp`` add one bias weight per neuron channel). zhou2021 Table 2
    lists GoogLeNet at 6.8M; torchvision's GoogLeNet (no aux heads) has 6,624,904 because its "5x5"
    branches are 3x3 convolutions (380,928 fewer weights), plus its batch-norm and FC bias.
    """
    if global_pool not in ("avg", "max"):
        raise ConfigError(f"zhou2021_googlenet global_pool must be 'avg' or 'max', got {global_pool!r}")
    layers: list[Layer] = [Conv(scaled(64, width), 7, stride=2, padding=3), _googlenet_pool(),
                           Conv(scaled(64, width), 1), Conv(scaled(192, width), 3, padding=1), _googlenet_pool()]
    for name in ("3a", "3b", "MP", "4a", "4b", "4c", "4d", "4e", "MP", "5a", "5b"):
        layers.append(_googlenet_pool() if name == "MP" else inception(*INCEPTION[name], width))
    _, h, w = sequence_shape(tuple(layers), tuple(input_shape))
    if h != w:  # Pool(h) over an h x w map would drop columns (or pool none of a 1 x 2 map)
        raise ConfigError(f"zhou2021_googlenet needs square maps before the global pool, got {h}x{w} (input "
                          f"{list(input_shape)})")
    if h > 1:
        layers.append(Pool(global_pool, h))  # global pooling over the last h x h map
    return (*layers, Flatten(), *((Dropout(dropout),) if dropout else ()), Linear(num_classes, act=False))
