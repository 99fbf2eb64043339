"""``methods.build``: the spec's initial batch-norm weight (``Conv.norm_scale``) under each batch-norm kind."""

import pytest
import torch
from torch import nn

from deepspike.methods import get_method
from deepspike.models.registry import create_architecture

SHAPE = (3, 8, 8)


def _bn_weights(norm: str, threshold: float, alpha: float = 1.0) -> list[torch.Tensor]:
    """The effective ``gamma`` of every batch-norm of a small MS-ResNet built by stbp with ``method.norm``."""
    torch.manual_seed(0)
    arch = create_architecture("ms_resnet18", 10, SHAPE, 0.125)
    options = {"norm": norm, "timesteps": 2, "threshold": threshold, "tdbn_alpha": alpha}
    net = get_method("stbp", options).build(arch)
    return [m.weight.detach().clone() for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize(("threshold", "alpha"), [(0.5, 1.0), (1.0, 0.7)])
def test_tdbn_starts_at_the_specs_norm_scale_times_alpha_vth(threshold, alpha):
    """MS-ResNet's batch-norms start at 0.5 and at 0 for each unit's last (``Conv.norm_scale``: every unit begins as
    the identity); tdBN's gamma = lambda alpha V_th must start at norm_scale alpha V_th, the plain BN's weight times
    alpha V_th. Before, the build scaled ``bn.weight`` in place, which under tdBN's parametrisation is a tensor
    computed on each read: every tdBN started at alpha V_th (0.5 for V_th 0.5) and no unit as the identity."""
    plain, tdbn = _bn_weights("bn", threshold), _bn_weights("tdbn", threshold, alpha)
    assert len(plain) == len(tdbn) > 0
    assert {float(w[0]) for w in plain} == {0.5, 0.0}  # the spec's scales, on torch's initial weight 1
    for p, t in zip(plain, tdbn, strict=True):
        torch.testing.assert_close(t, p * alpha * threshold, rtol=0, atol=1e-7)


def test_tdbn_with_norm_scale_still_trains_lambda():
    """The scale lands on the trained lambda: one gradient step on gamma moves lambda, and gamma stays its multiple."""
    torch.manual_seed(0)
    net = get_method("stbp", {"norm": "tdbn", "timesteps": 2, "threshold": 0.5}).build(
        create_architecture("ms_resnet18", 10, SHAPE, 0.125))
    bn = next(m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    lam = bn.parametrizations.weight.original
    assert float(lam.detach()[0]) == 0.5 and float(bn.weight.detach()[0]) == 0.25
    net(torch.rand(2, *SHAPE)).sum().backward()
    assert lam.grad is not None and lam.grad.shape == lam.shape
