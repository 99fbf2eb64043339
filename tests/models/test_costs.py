"""``models.costs`` against torch's own counts: the MACs of every ``nn.Conv2d``/``nn.Linear`` call seen by a forward
hook (the (output, real input) pairs, taps on a convolution's padding left out, + one per output for a bias) and
``sum(p.numel())`` of the built modules."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from deepspike.layers.fan_out import conv_fan_out
from deepspike.methods import create_model
from deepspike.models import create_architecture
from deepspike.models.costs import count_macs, count_parameters, layer_costs
from deepspike.models.layer_specs import Conv, Flatten, Linear
from deepspike.models.spec import Architecture


def _torch_counts(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """(MACs of one sample, weights and biases) of the conv and linear modules of ``model``, by forward hooks."""
    macs = []

    def hook(module, inputs, out):
        bias = out.numel() * (module.bias is not None)
        if isinstance(module, nn.Linear):
            macs.append(out.numel() * module.in_features + bias)
            return
        real = torch.ones_like(inputs[0][:1, :1])  # one channel of ones: each output counts its in-bounds taps
        pairs = F.conv2d(real, torch.ones(1, 1, *module.kernel_size), None, module.stride, module.padding,
                         module.dilation).sum()
        macs.append(int(pairs) * module.out_channels * module.in_channels // module.groups + bias)

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        model.eval()(torch.rand(1, *shape))
    for handle in handles:
        handle.remove()
    return sum(macs), sum(p.numel() for m in layers for p in m.parameters(recurse=False))


@pytest.mark.parametrize(("name", "shape", "width", "args"), [
    ("lenet", (1, 28, 28), 0.5, {}),
    ("vgg", (1, 15, 15), 0.25, {"batch_norm": False}),  # biased convs and FC layers, odd maps
    ("resnet", (1, 13, 13), 0.25, {}),  # strided units with 1x1 shortcuts, odd maps
    ("sengupta_resnet20", (3, 15, 15), 0.25, {}),  # type-A shortcuts: concat of strided 1x1 pools
    ("lee2020_resnet11", (3, 17, 17), 1 / 16, {}),
    ("zhou2021_cifar_medium", (3, 17, 17), 1 / 16, {}),
    ("zhou2021_googlenet", (3, 64, 64), 1 / 16, {"dropout": 0.0}),  # inception blocks, padded max pools
])
def test_registered_nets_count_what_torch_computes(name, shape, width, args):
    """The spec's conv and linear MACs and weights equal the hook count and numel of the ANN built from it; the
    average pools add their accumulates on top (one per real input of each window)."""
    arch = create_architecture(name, 10, shape, width, **args)
    macs, params = _torch_counts(create_model(name, "ann", 10, shape, width, model_args=args), shape)
    pools = sum(c.macs for c in layer_costs(arch) if c.kind == "avgpool")
    assert (count_macs(arch) - pools, count_parameters(arch)) == (macs, params)


def test_spikformer_projections_and_recurrent_layers_count_what_torch_computes():
    """Attention's projections are ``params * L`` of its MACs (the rest are the products ``2 C d L``, no module's);
    a recurrent layer's feedback weight is in its fan-in: ``(N + M) M`` per step."""
    arch = create_architecture("spikformer", 10, (3, 16, 16), 1.0, dim=32, depth=1, heads=4)
    macs, params = _torch_counts(create_model("spikformer", "stbp", 10, (3, 16, 16), 1.0, timesteps=1, norm="bn",
                                              model_args={"dim": 32, "depth": 1, "heads": 4}), (3, 16, 16))
    products = sum(2 * c.input_shape[0] * (c.input_shape[0] // 4) * c.input_shape[1] * c.input_shape[2]
                   for c in layer_costs(arch) if c.kind == "attention")
    pools = sum(c.macs for c in layer_costs(arch) if c.kind == "avgpool")
    assert (count_macs(arch) - products - pools, count_parameters(arch)) == (macs, params)
    rsnn = create_architecture("rsnn", 10, (20,), 1.0, hidden=[8])
    assert (count_macs(rsnn), count_parameters(rsnn)) == ((20 + 8) * 8 + 8 * 10,) * 2
    assert _torch_counts(create_model("rsnn", "stbp", 10, (20,), model_args={"hidden": [8]}, timesteps=1), (20,)) == (
        (20 + 8) * 8 + 8 * 10,) * 2


def test_delayed_synapses_count_their_delays_as_parameters():
    """Each synapse of ``Linear(delays=D)`` holds a weight and a learnable delay (``DelayedLinear.position``): 2 N M
    parameters, N M MACs per step; the built net's numel agrees (no batch-norm, no bias)."""
    arch = create_architecture("dsnn", 10, (20,), 1.0, hidden=[8], delays=4)
    assert [(c.params, c.macs) for c in layer_costs(arch)] == [(2 * 20 * 8, 20 * 8), (2 * 8 * 10, 8 * 10)]
    net = create_model("dsnn", "stbp", 10, (20,), model_args={"hidden": [8], "delays": 4}, timesteps=4)
    assert count_parameters(arch) == sum(p.numel() for p in net.parameters()) == 2 * (160 + 80)


def test_a_padded_convolution_counts_only_its_real_inputs():
    """By hand: a 3x3 kernel with padding 1 on a 1x3x3 map reaches 4 inputs at each corner output, 6 at each edge
    and 9 at the centre: 4*4 + 4*6 + 9 = 49 (output, input) pairs; with stride 2 (outputs at the four corners)
    4*4 = 16; a 1x1 kernel with padding 2 on a 1x2x2 map: 4 per output channel. Before, every tap counted, padding
    too: 81, 36 and 36. The SNN's synaptic operations count the same
    pairs (``layers.fan_out.conv_fan_out``: padding is no input)."""
    for stride, pairs in ((1, 49), (2, 16)):
        arch = Architecture("t", (Conv(1, 3, stride=stride, padding=1), Flatten(), Linear(2, act=False)), (1, 3, 3), 2)
        assert layer_costs(arch)[0].macs == pairs == int(conv_fan_out((1, 3, 3), 1, (3, 3), stride, 1).sum())
    wide = Architecture("t", (Conv(2, 1, padding=2), Flatten(), Linear(2, act=False)), (1, 2, 2), 2)
    assert layer_costs(wide)[0].macs == 2 * 4  # 6x6 outputs of a 1x1 kernel, 32 of them on padding alone
