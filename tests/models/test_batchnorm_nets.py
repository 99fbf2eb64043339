"""The vgg and resnet families: batch-norm flags, biases, shortcuts, pooling choice, and the spec fold."""

import pytest
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.models.fold import fold_batch_norms, has_batch_norm
from deepspike.models.spec import Conv, Linear, Pool, Residual


def test_vgg_layers_by_hand():
    arch = create_architecture("vgg", num_classes=10, blocks=[[4, 4], [8]], hidden=[16])
    convs = [layer for layer in arch.layers if isinstance(layer, Conv)]
    expected = [(4, True, False, 1), (4, True, False, 1), (8, True, False, 1)]
    assert [(c.out_channels, c.norm, c.bias, c.padding) for c in convs] == expected
    assert [layer.kind for layer in arch.layers if isinstance(layer, Pool)] == ["avg", "avg"]
    assert [(lin.out_features, lin.bias, lin.act) for lin in arch.layers if isinstance(lin, Linear)] == [
        (16, True, True), (10, True, False)]
    plain = create_architecture("vgg", num_classes=10, blocks=[[4]], hidden=[], batch_norm=False, pool="max")
    assert [(c.norm, c.bias) for c in plain.layers if isinstance(c, Conv)] == [(False, True)]
    assert not has_batch_norm(plain) and has_batch_norm(arch)
    with pytest.raises(ConfigError):
        create_architecture("vgg", num_classes=10, pool="median")


def test_resnet_shortcuts_and_ann_batch_norms():
    arch = create_architecture("resnet", num_classes=10, stem=8, stages=[8, 16], blocks=[2, 1])
    units = [layer for layer in arch.layers if isinstance(layer, Residual)]
    assert [len(u.shortcut) for u in units] == [0, 0, 1]  # identity, identity, 1x1 projection (stride 2)
    assert units[2].shortcut[0] == Conv(16, 1, 2, 0, act=False, bias=False, norm=True)
    ann = get_method("ann", {}).build(arch)
    convs = [m for m in ann.modules() if isinstance(m, nn.Conv2d)]
    assert len([m for m in ann.modules() if isinstance(m, nn.BatchNorm2d)]) == len(convs) == 1 + 2 * 3 + 1
    folded = fold_batch_norms(arch)
    assert not has_batch_norm(folded) and folded.visits()[-1].output_shape == (10,)
    assert all(c.bias for c in (v.layer for v in folded.visits()) if isinstance(c, Conv))
    with pytest.raises(ConfigError):
        create_architecture("resnet", num_classes=10, stages=[8, 16], blocks=[1])


def test_deep_layouts_count_their_parameters_by_hand():
    """VGG-11 / VGG-16 / ResNet-18 at 3x32x32 with batch-norm: bias-free 3x3 convs + BN (2 per channel), classifier
    512 -> 10 with bias; ResNet-18 adds 1x1 projection shortcuts (+BN) where a stage starts."""
    def count_parameters(arch):
        return sum(p.numel() for p in get_method("ann", {}).build(arch).parameters())

    def convs(pairs):
        return sum(9 * c_in * c_out + 2 * c_out for c_in, c_out in pairs)

    vgg11 = convs([(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)])
    assert count_parameters(create_architecture("vgg11")) == vgg11 + 512 * 10 + 10
    vgg16 = convs([(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512),
                   (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)])
    assert count_parameters(create_architecture("vgg16")) == vgg16 + 512 * 10 + 10
    stages = [(64, 64), (64, 64), (64, 64), (64, 64)]  # stage 1: two units of two convs
    for c_in, c in ((64, 128), (128, 256), (256, 512)):
        stages += [(c_in, c), (c, c), (c, c), (c, c)]
    projections = sum(c_in * c + 2 * c for c_in, c in ((64, 128), (128, 256), (256, 512)))
    resnet18 = convs([(3, 64), *stages]) + projections + 512 * 10 + 10
    assert count_parameters(create_architecture("resnet18")) == resnet18
