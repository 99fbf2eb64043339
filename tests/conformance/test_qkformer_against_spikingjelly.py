"""QKFormer against SpikingJelly 2.0's ``model.QKFormer`` (Zhou et al., NeurIPS 2024; run by ``make test-nir``, whose
venv has SpikingJelly): the whole net with the same weights and neurons gives the same logits and weight gradients,
for token and channel Q-K attention, and QKFormer-10-384 the same parameters but the redundant biases.

SpikingJelly builds its attention neurons with their own defaults (``LIFNode(tau=2, detach_reset=True)``, threshold 1,
0.5 for the attention neuron, ``decay_input=True``) and passes its keyword arguments to the others only; given
``tau=2, detach_reset=True`` every neuron is that one, ours at threshold 2 with sigmoid alpha 2
(``spikingjelly_nets``). Its attention projects Q and K (and SSA's V) with one fused 1x1 convolution and batch-norm,
split here into our separate projections; its convolutions before a batch-norm carry biases, zeroed (ours have
none: the batch-norm's shift makes them redundant).
"""

import pytest
import torch
from torch import nn

from conformance.conftest import require
from conformance.spikingjelly_nets import firing_batch_norms, same_logits_then_backward, stbp_like
from deepspike.models.registry import create_architecture

T, B = 3, 4
SIZES = {"dim": 32, "heads": [2, 2, 4], "depths": [1, 1, 1], "mlp_ratio": 2.0}
CONVS = (nn.Conv1d, nn.Conv2d)


def _theirs(qk: str):
    from spikingjelly.activation_based.model.qkformer import QKFormer

    torch.manual_seed(0)
    net = QKFormer(T=T, in_channels=3, num_classes=5, embed_dims=SIZES["dim"], num_heads=tuple(SIZES["heads"]),
                   depths=tuple(SIZES["depths"]), mlp_ratio=SIZES["mlp_ratio"], qka_type=qk, tau=2.0,
                   detach_reset=True).double()
    firing_batch_norms(net, 2.0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, CONVS) and module.bias is not None:
                module.bias.zero_()
            if isinstance(module, nn.BatchNorm1d):
                module.weight.uniform_(1.6, 3.2)
                module.bias.uniform_(-0.4, 1.2)
    return net


def _their_units(net) -> list[tuple[torch.Tensor, nn.Module, slice]]:
    """``(conv weight, batch-norm, output rows)`` per projection in execution order (its stages are registered after
    all its patch embeddings: the order is read off one forward pass), a fused Q-K(-V) convolution split into one
    unit per C output rows. Each convolution's batch-norm is the next one registered after it."""
    from spikingjelly.activation_based import functional

    modules = list(net.named_modules())
    order: list[int] = []
    hooks = [m.register_forward_hook(lambda *_, i=i: order.append(i)) for i, (_, m) in enumerate(modules)
             if isinstance(m, CONVS)]
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32, dtype=torch.float64))
    functional.reset_net(net)
    for hook in hooks:
        hook.remove()
    units = []
    for i in order:
        name, module = modules[i]
        norm = next(m for _, m in modules[i + 1:] if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d))
        parts = 3 if name.endswith("qkv_conv_bn.0") else 2 if name.endswith("qk_conv_bn.0") else 1
        rows = module.weight.shape[0] // parts
        units += [(module.weight, norm, slice(j * rows, (j + 1) * rows)) for j in range(parts)]
    return units


def _our_units(net) -> list[tuple[torch.Tensor, nn.Module]]:
    modules = list(net.modules())
    return [(m.weight, next(n for n in modules[i + 1:] if isinstance(n, nn.BatchNorm2d)))
            for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]


def _pairs(ours, theirs):
    return list(zip(_our_units(ours), _their_units(theirs), strict=True))


@pytest.mark.parametrize("qk", ["token", "channel"])
def test_qkformer_equals_spikingjellys(qk):
    require("spikingjelly", "make test-nir installs SpikingJelly")
    theirs = _theirs(qk)
    ours = stbp_like(create_architecture("qkformer", 5, (3, 32, 32), 1.0, qk=qk, **SIZES), T, 2.0, alpha=2.0)
    with torch.no_grad():
        for (weight, norm), (their_weight, their_norm, rows) in _pairs(ours, theirs):
            weight.copy_(their_weight[rows].reshape(weight.shape))
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(norm, key).copy_(getattr(their_norm, key)[rows])
        head, their_head = (next(m for m in net.modules() if isinstance(m, nn.Linear)) for net in (ours, theirs))
        head.load_state_dict(their_head.state_dict())
    torch.manual_seed(1)
    same_logits_then_backward(ours, theirs, torch.rand(B, 3, 32, 32, dtype=torch.float64) * 2)
    for (weight, norm), (their_weight, their_norm, rows) in _pairs(ours, theirs):
        torch.testing.assert_close(weight.grad, their_weight.grad[rows].reshape(weight.shape), rtol=1e-7, atol=1e-10)
        torch.testing.assert_close(norm.weight.grad, their_norm.weight.grad[rows], rtol=1e-7, atol=1e-10)
    assert _our_units(ours)[0][0].grad.abs().sum() > 0


def test_qkformer_10_384_has_spikingjellys_parameters_but_the_redundant_biases():
    """SpikingJelly's ``qkformer_10_384()``: 16,472,584 parameters, 17,904 of them biases of convolutions that a
    batch-norm follows; ours 16,454,680 (the paper: 16.47 M)."""
    require("spikingjelly", "make test-nir installs SpikingJelly")
    from spikingjelly.activation_based.model.qkformer import qkformer_10_384

    from deepspike.methods import create_model

    theirs = qkformer_10_384()
    ours = create_model("qkformer", method="stbp", num_classes=1000, norm="bn")
    redundant = sum(m.bias.numel() for m in theirs.modules() if isinstance(m, CONVS) and m.bias is not None)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) - redundant
