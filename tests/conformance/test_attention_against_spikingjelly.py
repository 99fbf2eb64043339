"""Spiking self-attention against SpikingJelly 2.0's ``layer.SpikingSelfAttention`` (Spikformer's SSA; run by ``make
test-nir``, whose venv has SpikingJelly): the same weights and batch-norm statistics, the same neurons, the same
spikes and gradients.

SpikingJelly's block: one 1x1 ``Conv1d(C, 3C)`` + ``BatchNorm1d(3C)`` + LIF for Q, K and V (channels ``[0, C)``,
``[C, 2C)``, ``[2C, 3C)``), ``(V K^T) Q * 0.125`` per head, a LIF of threshold 0.5, a 1x1 projection + BN + LIF, on
``[T, N, C, L]``. Its ``LIFNode(tau=2, decay_input=False)`` charges ``H = V - V / 2 + X``, our ``LIF(decay=0.5)``'s
``h = 0.5 v + x`` (halving is exact), fires at ``H >= th``, resets to 0, and with ``detach_reset`` and its
``Sigmoid(alpha=4)`` surrogate has our ``detach_reset`` and ``sigmoid`` gradient.
"""

import pytest
import torch

from conformance.conftest import require
from deepspike.methods import get_method
from deepspike.models.layer_specs import Attention, Flatten, Linear, Pool
from deepspike.models.spec import Architecture

T, N, C, H, W, HEADS = 4, 3, 16, 2, 3, 4


def _ours(threshold: float):
    arch = Architecture("ssa", (Attention(HEADS), Pool("avg", 2, 1), Flatten(), Linear(5, act=False)), (C, H, W), 5)
    options = {"timesteps": T, "encoder": "frames", "norm": "bn", "decay": 0.5, "threshold": threshold,
               "reset": "zero", "surrogate": "sigmoid", "surrogate_args": {"alpha": 4.0}, "detach_reset": True}
    return get_method("stbp", options).build(arch).body[0].double()


def _copy_weights(ours, theirs) -> None:
    conv, norm = theirs.qkv_conv_bn[0], theirs.qkv_conv_bn[1]
    with torch.no_grad():
        for i, branch in enumerate((ours.query, ours.key, ours.value)):
            rows = slice(i * C, (i + 1) * C)
            branch[0].module.weight.copy_(conv.weight[rows].unsqueeze(-1))
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(branch[1].module, name).copy_(getattr(norm, name)[rows])
        ours.output[0].module.weight.copy_(theirs.proj_conv_bn[0].weight.unsqueeze(-1))
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(ours.output[1].module, name).copy_(getattr(theirs.proj_conv_bn[1], name))


@pytest.mark.parametrize("threshold", [1.0, 0.6])
def test_spiking_self_attention_equals_spikingjelly(threshold):
    require("spikingjelly", "make test-nir installs SpikingJelly")
    from spikingjelly.activation_based import functional, surrogate
    from spikingjelly.activation_based.layer import SpikingSelfAttention

    torch.manual_seed(0)
    theirs = SpikingSelfAttention(C, HEADS, decay_input=False, v_threshold=threshold, detach_reset=True,
                                  surrogate_function=surrogate.Sigmoid(alpha=4.0)).double()
    theirs.attn_lif.v_threshold = threshold * 0.5  # SpikingJelly's 0.5 of the others' 1, kept as a fraction
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    ours = _ours(threshold)
    _copy_weights(ours, theirs)
    x = (torch.rand(T, N, C, H, W, dtype=torch.float64) < 0.5).double()
    x_theirs = x.clone().flatten(3).requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    got, want = ours(x_ours), theirs(x_theirs)
    functional.reset_net(theirs)
    assert torch.equal(got.flatten(3), want)
    assert 0.05 < want.mean() < 0.95
    weights = torch.linspace(-1.0, 1.0, want.numel(), dtype=torch.float64).reshape(want.shape)
    (want * weights).sum().backward()
    (got.flatten(3) * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad.flatten(3), x_theirs.grad)
    torch.testing.assert_close(ours.output[0].module.weight.grad.squeeze(-1), theirs.proj_conv_bn[0].weight.grad)
    qkv = torch.cat([b[0].module.weight.grad.squeeze(-1) for b in (ours.query, ours.key, ours.value)])
    torch.testing.assert_close(qkv, theirs.qkv_conv_bn[0].weight.grad)
    assert x_ours.grad.abs().sum() > 0


def test_spikformer_cifar_has_spikingjellys_parameters_layer_by_layer():
    """Our ``spikformer`` (defaults: Spikformer-4-384 on 3x32x32) against SpikingJelly's ``spikformer_cifar10()``:
    the same parameter tensors' sizes, sorted (their stem fuses no layers and ours splits Q, K, V)."""
    require("spikingjelly", "make test-nir installs SpikingJelly")
    from spikingjelly.activation_based.model.spikformer import spikformer_cifar10

    from deepspike.methods import create_model

    theirs = spikformer_cifar10()
    ours = create_model("spikformer", method="stbp", num_classes=10, norm="bn")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    their_weights = sorted(p.numel() for p in theirs.parameters() if p.dim() > 1)
    our_weights = sorted(p.numel() for p in ours.parameters() if p.dim() > 1)
    qkv = [n for n in their_weights if n == 3 * 384 * 384]
    assert len(qkv) == 4 and sorted(our_weights) == sorted([n for n in their_weights if n != 3 * 384 * 384]
                                                            + [384 * 384] * 12)
