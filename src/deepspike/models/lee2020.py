"""lee2020's VGG and residual SNNs (Tables 4-5); LeNet is ``lenet`` in ``models.small``.

3x3 convolutions with padding 1, bias-free; ``Pool("avg", 2)`` becomes the spiking pooling neuron under
``spikebp``. Residual blocks are ``conv-LIF-conv`` plus a skip path (identity, or a 1x1 convolution when
the channels or the stride change) joined in the second LIF neuron. ``dropout`` (lee2020: 0.2-0.25) masks the
spikes of every spiking layer but the pooling neurons: each convolution, each block's junction and the hidden FC
layer (lee2020 Algorithm 1 draws a mask for every layer; its code multiplies each conv's and the FC layer's spikes by
one, ``mask_11``, ``mask_12``, ..., ``mask_f0``, the pools' spikes by none). Defaults: ``(3, 32, 32)`` (SVHN /
CIFAR-10).
"""

from __future__ import annotations

from deepspike.models.blocks import classifier_head
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import Conv, Dropout, Layer, Pool, Residual

IMAGE = (3, 32, 32)


def _conv(channels: int, width: float, stride: int = 1) -> Conv:
    return Conv(scaled(channels, width), 3, stride=stride, padding=1)


def _head(num_classes: int, width: float, dropout: float, hidden: tuple[int, ...] = (1024,)) -> tuple[Layer, ...]:
    return tuple(classifier_head(num_classes, hidden, width, dropout))


def _masked(dropout: float, *layers: Layer) -> tuple[Layer, ...]:
    """``layers`` with ``Dropout(dropout)`` after each convolution and residual block (whose spikes lee2020 masks;
    not after a pool); ``layers`` as they are when ``dropout`` is 0."""
    out: list[Layer] = []
    for layer in layers:
        out += [layer, Dropout(dropout)] if dropout and isinstance(layer, Conv | Residual) else [layer]
    return tuple(out)


def _block(in_ch: int, out_ch: int, width: float, stride: int, dropout: float,
           skip_conv: bool | None = None) -> Residual:
    """``LIF(conv3x3(drop(LIF(conv3x3(x)))) + skip(x))``; the second conv has ``stride``; 1x1 skip conv if needed."""
    second = Conv(scaled(out_ch, width), 3, stride=stride, padding=1, act=False)  # LIF at the junction
    body = (*_masked(dropout, _conv(out_ch, width)), second)
    needs_conv = in_ch != out_ch or stride != 1 if skip_conv is None else skip_conv
    shortcut = (Conv(scaled(out_ch, width), 1, stride=stride, act=False),) if needs_conv else ()
    return Residual(body, shortcut)


@register_model("lee2020_vgg7", default_input_shape=IMAGE, paper="lee2020 Table 4")
def vgg7(num_classes, input_shape, width, dropout: float = 0.0):
    """VGG7 of lee2020 (SVHN): 64C3-64C3s2-AP2-128C3-128C3s2-128C3s2-AP2-1024-classes."""
    return (*_masked(dropout, _conv(64, width), _conv(64, width, 2), Pool("avg", 2),
                     _conv(128, width), _conv(128, width, 2), _conv(128, width, 2), Pool("avg", 2)),
            *_head(num_classes, width, dropout))


@register_model("lee2020_vgg9", default_input_shape=IMAGE, paper="lee2020 Table 5")
def vgg9(num_classes, input_shape, width, dropout: float = 0.0):
    """VGG9 of lee2020 (CIFAR-10): 64C3-64C3-AP2-128C3-128C3-AP2-256C3-256C3-256C3-AP2-1024-classes."""
    return (*_masked(dropout, _conv(64, width), _conv(64, width), Pool("avg", 2),
                     _conv(128, width), _conv(128, width), Pool("avg", 2),
                     _conv(256, width), _conv(256, width), _conv(256, width), Pool("avg", 2)),
            *_head(num_classes, width, dropout))


@register_model("lee2020_vgg11", default_input_shape=IMAGE, paper="lee2020 Fig. 8b (layout: VGG-A convs)")
def vgg11(num_classes, input_shape, width, dropout: float = 0.0):
    """VGG11 (lee2020 names it, gives no table): VGG-A's 8 convs with 4 AP2, then 1024-1024-classes."""
    return (*_masked(dropout, _conv(64, width), Pool("avg", 2), _conv(128, width), Pool("avg", 2),
                     _conv(256, width), _conv(256, width), Pool("avg", 2),
                     _conv(512, width), _conv(512, width), Pool("avg", 2), _conv(512, width), _conv(512, width)),
            *_head(num_classes, width, dropout, hidden=(1024, 1024)))


@register_model("lee2020_resnet7", default_input_shape=IMAGE, paper="lee2020 Table 4")
def resnet7(num_classes, input_shape, width, dropout: float = 0.0):
    """ResNet7 of lee2020 (SVHN): 64C3-AP2-[128,128s2 | 1x1s2]-[256,256s2 | 1x1s2]-1024-classes."""
    return (*_masked(dropout, _conv(64, width), Pool("avg", 2), _block(64, 128, width, 2, dropout),
                     _block(128, 256, width, 2, dropout)),
            *_head(num_classes, width, dropout))


@register_model("lee2020_resnet9", default_input_shape=IMAGE, paper="lee2020 Table 5")
def resnet9(num_classes, input_shape, width, dropout: float = 0.0):
    """ResNet9 of lee2020: 64C3-AP2-[128,128 | 1x1]-[256,256s2 | 1x1s2]-[512,512s2 | 1x1s2]-1024-classes."""
    return (*_masked(dropout, _conv(64, width), Pool("avg", 2), _block(64, 128, width, 1, dropout),
                     _block(128, 256, width, 2, dropout), _block(256, 512, width, 2, dropout)),
            *_head(num_classes, width, dropout))


@register_model("lee2020_resnet11", default_input_shape=IMAGE, paper="lee2020 Table 5")
def resnet11(num_classes, input_shape, width, dropout: float = 0.0):
    """ResNet11 of lee2020: ResNet9 with [512,512 | 1x1] before the last block (every skip a 1x1 conv)."""
    return (*_masked(dropout, _conv(64, width), Pool("avg", 2), _block(64, 128, width, 1, dropout),
                     _block(128, 256, width, 2, dropout), _block(256, 512, width, 1, dropout),
                     _block(512, 512, width, 2, dropout, skip_conv=True)),
            *_head(num_classes, width, dropout))
