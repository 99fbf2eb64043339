"""Folding BN and tdBN into the preceding weights (``layers.batchnorm_fold``): exact in eval mode; TEBN refused."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.batchnorm_fold import fold_batch_norms_
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.models.fold import fold_batch_norms


def _trained_stats_net(norm):
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 3, "norm": norm, "threshold": 0.3, "readout": "membrane"})
    arch = create_architecture("vgg", num_classes=10, blocks=[[4], [6]], hidden=[8])
    net = method.build(arch).double()
    for m in net.modules():  # non-trivial affine parameters
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.bias.uniform_(-0.2, 0.2)
    with torch.no_grad():
        for _ in range(3):  # move the running statistics
            net(torch.rand(8, 1, 28, 28, dtype=torch.float64))
    return method, arch, net.eval()


@pytest.mark.parametrize("norm", ["bn", "tdbn"])
def test_folded_net_equals_the_unfolded_one_in_eval_mode(norm):
    method, arch, net = _trained_stats_net(norm)
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        before = net(x)
        fold_batch_norms_(net)
        after = net(x)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert torch.allclose(before, after, atol=1e-12)
    # the folded net has the keys of the net built from the folded spec (biases, no norms)
    plain = get_method("stbp", {"timesteps": 3, "readout": "membrane"}).build(fold_batch_norms(arch))
    assert set(net.state_dict()) == set(plain.state_dict())


def test_tebn_refuses_to_fold_in_one_line():
    _, _, net = _trained_stats_net("tebn")
    with pytest.raises(ConfigError, match="TEBN .* no single folded weight"):
        fold_batch_norms_(net)
