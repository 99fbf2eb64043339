"""MS-ResNet against SpikingJelly 2.0's ``model.MSResNet`` (Hu et al., "Advancing Spiking Neural Networks towards
Deep Residual Learning"; run by ``make test-nir``, whose venv has SpikingJelly): the whole net with the same weights
and neurons (``spikingjelly_nets``) gives the same logits and weight gradients, and the CIFAR ResNet-18 layout the same
parameters. SpikingJelly's ImageNet layout strides its first stage by 2 (a class attribute); the CIFAR layout
compared here is its subclass with stride 1, our default.
"""

import pytest
import torch
from torch import nn

from conformance.conftest import require
from conformance.spikingjelly_nets import (
    assert_same_logits_and_gradients,
    firing_batch_norms,
    spikingjelly_neuron,
    stbp_like,
    weighted,
)
from deepspike.methods import create_model
from deepspike.models.registry import create_architecture

T, B = 3, 4
SIZES = {"blocks": [2, 1, 1], "stages": [8, 16, 16]}  # the last stage downsamples without widening


def _spikingjelly_cifar_layout():
    from spikingjelly.activation_based.model.ms_resnet import MSResNet

    class CifarLayout(MSResNet):
        _first_stage_stride = 1

    return CifarLayout


def _theirs(threshold: float):
    torch.manual_seed(0)
    net = _spikingjelly_cifar_layout()(
        T=T, in_channels=3, num_classes=5, layers=tuple(SIZES["blocks"]), stage_channels=tuple(SIZES["stages"]),
        base_channels=SIZES["stages"][0], stem_kernel_size=3, stem_stride=1, **spikingjelly_neuron(threshold)).double()
    firing_batch_norms(net, threshold)  # its initial batch-norm weights (0.5, and 0 at each unit's end) replaced
    return net


@pytest.mark.parametrize("threshold", [1.0, 0.6])
def test_ms_resnet_equals_spikingjellys(threshold):
    require("spikingjelly", "make test-nir installs SpikingJelly")
    ours = stbp_like(create_architecture("ms_resnet18", 5, (3, 16, 16), 1.0, **SIZES), T, threshold)
    torch.manual_seed(1)
    assert_same_logits_and_gradients(ours, _theirs(threshold), torch.rand(B, 3, 16, 16, dtype=torch.float64) * 2)


def test_the_cifar_ms_resnet18_has_spikingjellys_parameters():
    require("spikingjelly", "make test-nir installs SpikingJelly")
    theirs = _spikingjelly_cifar_layout()(T=4, in_channels=3, num_classes=10, stem_kernel_size=3, stem_stride=1)
    ours = create_model("ms_resnet18", method="stbp", num_classes=10, norm="bn")
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    norms = zip(weighted(ours, nn.BatchNorm2d), weighted(theirs, nn.BatchNorm2d), strict=True)
    assert all(torch.equal(mine.weight, other.weight) for mine, other in norms)  # 0.5, and 0 at each unit's end
