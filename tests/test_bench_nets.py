"""The benchmark nets (``benchmarks/peers/nets.py``): every framework builds the same layers.

deepspike and the ANN are always checked; snnTorch and SpikingJelly where they are installed (the benchmark venv).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "peers"))
import nets  # noqa: E402

PEER_MODULES = {"snntorch": "snntorch", "spikingjelly": "spikingjelly"}


def _frameworks() -> list[str]:
    return ["ann", "deepspike"] + [f for f, m in PEER_MODULES.items() if importlib.util.find_spec(m) is not None]


@pytest.mark.parametrize("net", ["vgg11", "sew_resnet18", "vgg11_plif", "sew_resnet18_plif", "lenet_plif"])
def test_same_layout_in_every_framework(net):
    torch.manual_seed(0)
    ann = nets.build("ann", net, 2)
    for fw in _frameworks():
        model = nets.build(fw, net, 2)
        assert nets.layout(model) == nets.layout(ann), fw
        out = model(torch.rand(2, *nets.NETS[net]))
        assert out.shape == (2, 10), fw


def test_plif_nets_learn_a_decay_per_layer():
    hidden = [p for p in nets.build("deepspike", "vgg11_plif", 2).parameters() if p.dim() == 0]
    assert len(hidden) == 8  # one time constant per conv layer's neurons (VGG-11 has 8 convs)
    assert not [p for p in nets.build("deepspike", "vgg11", 2).parameters() if p.dim() == 0]


def test_unknown_net_is_refused():
    with pytest.raises(ValueError, match="unknown benchmark net"):
        nets.build("ann", "resnet50", 2)


def _trained_once(model: torch.nn.Module, weights: list[torch.Tensor] | None, x: torch.Tensor, y: torch.Tensor):
    """``(weights, scores, weight gradients)`` of one cross-entropy backward of ``model``, its layer weights first set
    to ``weights`` where given (``nets.layout`` order)."""
    params = [p for p in model.parameters() if p.dim() > 0 or p.numel() != 1]
    with torch.no_grad():
        for p, w in zip(params, weights or [], strict=False):
            p.copy_(w)
    out = model(x)
    torch.nn.functional.cross_entropy(out, y).backward()
    return [p.detach().clone() for p in params], out.detach(), [p.grad for p in params]


@pytest.mark.parametrize("peer", list(PEER_MODULES))
def test_peer_runs_deepspikes_neuron_with_an_undetached_reset(peer):
    """LeNet (no batch-norm) with deepspike's weights: the peer's scores and every weight gradient equal deepspike's.
    snnTorch's default ``reset_delay=True`` detaches the reset and changed the gradients by up to 33% here."""
    pytest.importorskip(PEER_MODULES[peer])
    torch.manual_seed(1)
    x, y = 2 * torch.rand(4, *nets.NETS["lenet"]), torch.randint(0, 10, (4,))
    weights, ref, ref_grads = _trained_once(nets.build("deepspike", "lenet", 4), None, x, y)
    _, out, grads = _trained_once(nets.build(peer, "lenet", 4), weights, x, y)
    torch.testing.assert_close(out, ref)
    assert ref.abs().sum() > 0
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * want.abs().max().item())
