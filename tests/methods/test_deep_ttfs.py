"""Deep TTFS nets train directly: VGG-11 under zhou2021's exp-kernel neurons with time-domain batch-norm, and
VGG-16 / ResNet-18 under the windowed ReL-PSP neurons (batch-norm), a training step each at 1/16 width."""

import pytest
import torch

from deepspike.methods import get_method
from deepspike.models import create_architecture

CASES = [("vgg11", {"batch_norm": False, "pool": "max"}, "ttfs", {"batchnorm": True, "coding": "p", "alpha": 5.0}),
         ("vgg16", {}, "ttfs_window", {}), ("resnet18", {}, "ttfs_window", {"latency_cost": 0.1, "spike_cost": 0.1})]


@pytest.mark.parametrize("model,args,method_name,options", CASES, ids=[c[0] + "-" + c[2] for c in CASES])
def test_a_training_step_of_a_deep_ttfs_net(model, args, method_name, options):
    torch.manual_seed(0)
    arch = create_architecture(model, num_classes=10, width=1 / 16, **args)
    method = get_method(method_name, options)
    net = method.build(arch)
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    before = [p.detach().clone() for p in net.parameters()]
    out = net(x)
    penalty = method.penalty(net)
    loss = method.loss(out, y) + (penalty if penalty is not None else 0.0)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads[:2])  # the first layers learn too: gradients reach them
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
