"""The direct-training nets (``models.direct_training``): layouts, parameter count by hand, one training step."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.sew import SewBlock
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.models.spec import Conv, Pool, Residual


def test_fang2021_fmnist_parameter_count_by_hand():
    # conv 1->128 3x3: 1152; BN 2*128; conv 128->128: 147456; BN 256; FC 128*7*7 = 6272 -> 2048: 12,845,056;
    # FC 2048 -> 10: 20,480 (all bias-free)
    net = get_method("stbp", {"norm": "bn"}).build(create_architecture("fang2021_fmnist"))
    expected = 1152 + 256 + 147456 + 256 + 6272 * 2048 + 2048 * 10
    assert sum(p.numel() for p in net.parameters()) == expected == 13_014_656


def test_vgg11_pools_while_the_map_allows():
    pools32 = [x for x in create_architecture("vgg11").layers if isinstance(x, Pool)]
    pools28 = [x for x in create_architecture("vgg11", input_shape=(1, 28, 28)).layers if isinstance(x, Pool)]
    assert (len(pools32), len(pools28)) == (5, 4)  # 32 -> 1 and 28 -> 14 -> 7 -> 3 -> 1
    assert sum(isinstance(x, Conv) for x in create_architecture("vgg11").layers) == 8


def test_vgg11_refuses_a_flat_input_in_one_line():
    """A sequence's (F,) samples crashed with ValueError: min() arg is an empty sequence (a traceback)."""
    with pytest.raises(ConfigError, match=r"^Conv needs an image input \(C, H, W\), got shape \(140,\)$"):
        create_architecture("vgg11", input_shape=(140,))


def test_sew_resnet18_units_and_shortcuts():
    units = [x for x in create_architecture("sew_resnet18", connect="iand").layers if isinstance(x, Residual)]
    assert len(units) == 8 and all(u.connect == "iand" for u in units)
    assert [len(u.shortcut) for u in units] == [0, 0, 1, 0, 1, 0, 1, 0]  # a 1x1 conv where a stage downsamples
    assert all(u.body[-1].act and all(c.act for c in u.shortcut) for u in units)  # branches end in spikes


@pytest.mark.parametrize("name, shape, args", [
    ("sew_resnet18", (3, 16, 16), {"connect": "add"}),
    ("sew_resnet", (1, 12, 12), {"connect": "and"}),
    ("sew_resnet", (1, 12, 12), {"connect": "iand"}),
    ("vgg11", (3, 32, 32), {}),
    ("vgg11", (1, 28, 28), {}),
    ("fang2021_fmnist", (1, 28, 28), {}),
    ("ms_resnet18", (3, 16, 16), {}),
])
def test_direct_training_nets_train_one_step(name, shape, args):
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 2, "norm": "tdbn", "loss": "tet", "readout": "membrane"})
    net = method.build(create_architecture(name, input_shape=shape, width=0.0625, **args))
    if name.startswith(("sew", "ms_")):
        assert sum(isinstance(m, SewBlock) for m in net.modules()) >= 3
    out = net(torch.rand(2, *shape))
    assert out.shape == (2, 2, 10)
    method.loss(out, torch.tensor([3, 7])).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_ms_resnet18_units_are_membrane_shortcuts():
    """Each unit: SN, conv3 + BN, SN, conv3 + BN (no neuron at its end), joined to the identity or to a 1x1 conv + BN
    of the currents; the stem has no neuron and the head fires before the global pool."""
    from deepspike.models.spec import Activation

    layers = create_architecture("ms_resnet18").layers
    units = [x for x in layers if isinstance(x, Residual)]
    assert len(units) == 8 and all(u.connect == "add" for u in units)
    assert [len(u.shortcut) for u in units] == [0, 0, 1, 0, 1, 0, 1, 0]
    for unit in units:
        assert [type(x).__name__ for x in unit.body] == ["Activation", "Conv", "Activation", "Conv"]
        assert not unit.body[1].act and not unit.body[3].act and all(not c.act for c in unit.shortcut)
    assert not layers[0].act and isinstance(layers[-4], Activation) and isinstance(layers[-3], Pool)


def test_ms_resnet_parameter_counts_are_spikingjellys():
    """SpikingJelly 2.0's ``ms_resnet18()`` and ``ms_resnet34()`` (ImageNet layout, 1000 classes) hold 11,693,736 and
    21,801,896 parameters; its CIFAR layout (3x3 stem, stride 1, 10 classes) 11,173,962
    (``tests/conformance/test_ms_resnet_against_spikingjelly.py`` compares the tensors)."""
    method = get_method("stbp", {"norm": "bn"})
    imagenet = {"stem_kernel": 7, "stem_stride": 2, "first_stride": 2}
    for blocks, count in (([2, 2, 2, 2], 11_693_736), ([3, 4, 6, 3], 21_801_896)):
        arch = create_architecture("ms_resnet18", 1000, (3, 224, 224), blocks=blocks, **imagenet)
        assert sum(p.numel() for p in method.build(arch).parameters()) == count
    assert sum(p.numel() for p in method.build(create_architecture("ms_resnet18")).parameters()) == 11_173_962


def test_ms_resnet_batch_norms_start_as_its_codes_and_each_unit_as_the_identity():
    """``bn_init`` (default): every batch-norm weight 0.5, the last of each unit 0, so a unit adds nothing at first
    (its output is its input exactly); ``bn_init: false`` keeps torch's 1."""
    from torch import nn

    method = get_method("stbp", {"timesteps": 2, "norm": "bn", "readout": "membrane"})
    arch = create_architecture("ms_resnet18", input_shape=(3, 16, 16), blocks=[1, 1], stages=[8, 16])
    net = method.build(arch)
    weights = [float(m.weight[0].detach()) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert weights == [0.5, 0.5, 0.0, 0.5, 0.0, 0.5]  # stem; unit 1: body 0.5, 0; unit 2: body 0.5, 0, shortcut 0.5
    unit = next(m for m in net.body if isinstance(m, SewBlock))
    x = torch.randn(2, 4, 8, 16, 16)
    assert torch.equal(unit(x), x)
    plain = method.build(create_architecture("ms_resnet18", input_shape=(3, 16, 16), blocks=[1, 1], stages=[8, 16],
                                             bn_init=False))
    assert all(float(m.weight[0].detach()) == 1.0 for m in plain.modules() if isinstance(m, nn.BatchNorm2d))
    from deepspike.core.errors import ConfigError

    with pytest.raises(ConfigError, match="norm_scale must be a finite number >= 0"):
        Conv(8, 3, norm=True, norm_scale=-1.0)


@pytest.mark.parametrize("blocks", [[2, 2, 2], [2, 0, 2, 2], [2, 2.5, 2, 2]])
def test_ms_resnet_refuses_bad_blocks_in_one_line(blocks):
    from deepspike.core.errors import ConfigError

    with pytest.raises(ConfigError, match="ms_resnet18: blocks must list 4 whole numbers|ms_resnet18': bad value "
                                          ".* for model.args.blocks: expected a non-empty list of whole numbers"):
        create_architecture("ms_resnet18", blocks=blocks)
