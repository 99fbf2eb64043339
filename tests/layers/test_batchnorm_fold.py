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


def test_folded_conv_equals_torchs_conv_then_batchnorm_with_a_tiny_variance():
    """Reference: torch's own eval-mode Conv2d -> BatchNorm2d. With running_var = 1e-4 the eps = 1e-5 inside the
    square root matters: g = 1 / sqrt(1e-4 + 1e-5) = 95.346 per unit gamma (1 / (sqrt(1e-4) + eps) would be 99.9)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).double().eval()
    with torch.no_grad():
        net[1].running_var.fill_(1e-4)
        net[1].running_mean.copy_(torch.tensor([0.1, -0.2]))
        net[1].weight.copy_(torch.tensor([1.0, -0.5]))
        net[1].bias.copy_(torch.tensor([0.3, 0.2]))
    x = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        expected = net(x)
        fold_batch_norms_(net)
        assert len(net) == 1
        torch.testing.assert_close(net(x), expected, rtol=1e-10, atol=1e-10)
