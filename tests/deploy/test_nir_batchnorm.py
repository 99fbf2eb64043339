"""NIR export of stbp nets with batch-norm: BN and tdBN folded into the conv weights (exact), TEBN refused."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.deploy import GraphSimulator, from_nir
from deepspike.deploy.families import reference_spikes
from deepspike.deploy.nir_export import to_nir
from deepspike.layers.batchnorm_fold import fold_batch_norms_
from deepspike.methods import get_method
from deepspike.models import create_architecture

pytest.importorskip("nir")


def _net(norm):
    torch.manual_seed(0)
    arch = create_architecture("vgg", blocks=[[4]], hidden=[])
    net = get_method("stbp", {"timesteps": 2, "norm": norm, "readout": "membrane"}).build(arch)
    with torch.no_grad():
        net(torch.rand(4, 1, 28, 28))  # training-mode pass: running statistics move away from (0, 1)
    return net.eval()


def test_tdbn_net_exports_with_the_norm_folded_into_the_conv():
    net = _net("tdbn")
    graph = to_nir(net, (1, 28, 28))
    convs = [n for n in graph.nodes.values() if type(n).__name__ == "Conv2d"]
    folded = fold_batch_norms_(net).body[0].module  # the reference fold on the model itself
    assert len(convs) == 1 and convs[0].bias is not None
    assert torch.allclose(torch.as_tensor(convs[0].weight), folded.weight.detach())
    assert torch.allclose(torch.as_tensor(convs[0].bias), folded.bias.detach())


def test_tebn_net_export_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="TEBN"):
        to_nir(_net("tebn"), (1, 28, 28))


@pytest.mark.parametrize("norm", ["bn", "tdbn"])
def test_a_batch_norm_net_read_back_gives_the_nets_own_spikes(norm):
    """End to end: the file of a net whose batch-norms hold statistics and affine terms away from (0, 1), read by
    ``from_nir`` and run by ``GraphSimulator``, gives the output spikes of the net itself (its batch-norm unfolded)."""
    torch.manual_seed(1)
    arch = create_architecture("vgg", input_shape=(1, 8, 8), blocks=[[4], [4]], hidden=[12])
    net = get_method("stbp", {"timesteps": 6, "norm": norm, "threshold": 0.3}).build(arch)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                for value, (low, high) in zip((m.running_mean, m.running_var, m.weight, m.bias),
                                              ((-0.3, 0.3), (0.5, 2.0), (1.0, 3.0), (0.0, 0.5))):
                    value.uniform_(low, high)
    net.eval()
    x = (torch.rand(6, 5, 1, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    graph = to_nir(net, (1, 8, 8))
    ours = reference_spikes(net, x)
    assert 0.05 * ours.numel() < ours.sum() < 0.95 * ours.numel()
    with torch.no_grad():
        assert torch.equal(from_nir(graph)(x), ours)
    assert torch.equal(GraphSimulator.rate_coded(graph).run({"input": x})["output"].float(), ours)
