"""``models.costs`` against torch's own counts: the MACs of every ``nn.Conv2d``/``nn.Linear`` call seen by a forward
hook (output elements x kernel fan-in, + one per output for a bias) and ``sum(p.numel())`` of the built modules."""

import pytest
import torch
from torch import nn

from deepspike.methods import create_model
from deepspike.models import create_architecture
from deepspike.models.costs import count_macs, count_parameters, layer_costs


def _torch_counts(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """(MACs of one sample, weights and biases) of the conv and linear modules of ``model``, by forward hooks."""
    macs = []

    def hook(module, inputs, out):
        fan_in = module.in_features if isinstance(module, nn.Linear) else (
            module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1])
        macs.append(out.numel() * (fan_in + (module.bias is not None)))

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
