"""lee2020's nets (``models.lee2020``): where ``dropout`` masks spikes, against the paper's code."""

import pytest
import torch

from deepspike.methods import get_method
from deepspike.models import Conv, Dropout, Pool, Residual, create_architecture


def _masked_after(layers) -> list[str]:
    """The kind of layer each Dropout follows, in order, body layers of a block included (before the block)."""
    kinds = []
    for before, layer in zip(layers, layers[1:], strict=False):
        if isinstance(before, Residual):
            kinds += _masked_after(before.body)
        if isinstance(layer, Dropout):
            kinds.append(type(before).__name__)
    return kinds


def test_vgg9_masks_every_conv_and_the_hidden_fc_as_the_papers_code():
    """chan8972/Enabling_Spikebased_Backpropagation cifar10_VGG9.py multiplies the spikes of all seven convs and of
    fc0 by a dropout mask (mask_11 ... mask_33, mask_f0; the pools' spikes by none); the spec dropped after fc0
    only (1 mask where the code has 8)."""
    layers = create_architecture("lee2020_vgg9", dropout=0.2).layers
    assert _masked_after(layers) == ["Conv"] * 7 + ["Linear"]
    assert not any(isinstance(a, Pool) and isinstance(b, Dropout) for a, b in zip(layers, layers[1:], strict=False))


def test_resnet11_masks_each_blocks_first_conv_and_junction_as_the_papers_code():
    """cifar10_ResNet11.py: mask_11 (stem conv), mask_21/31/41/51 (each block's first conv), mask_22/32/42/52 (each
    block's junction LIF, whose masked spikes feed both paths of the next block) and mask_f0: ten masks."""
    layers = create_architecture("lee2020_resnet11", dropout=0.25).layers
    assert _masked_after(layers) == ["Conv", *["Conv", "Residual"] * 4, "Linear"]
    block = next(layer for layer in layers if isinstance(layer, Residual))
    assert [type(x) for x in block.body] == [Conv, Dropout, Conv] and block.body[1].p == 0.25


@pytest.mark.parametrize("name", ["lee2020_vgg7", "lee2020_vgg9", "lee2020_vgg11", "lee2020_resnet7",
                                  "lee2020_resnet9", "lee2020_resnet11"])
def test_without_dropout_the_nets_hold_no_dropout_layer_and_spikebp_builds_them_with_one(name):
    arch = create_architecture(name, width=0.125)
    assert not any(isinstance(v.layer, Dropout) for v in arch.visits())
    net = get_method("spikebp", {"timesteps": 2}).build(create_architecture(name, width=0.125, dropout=0.5)).train()
    out = net(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
