"""NIR export of stbp nets with batch-norm: BN and tdBN folded into the conv weights (exact), TEBN refused."""

import pytest
import torch

from deepspike.core.errors import ConfigError
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
