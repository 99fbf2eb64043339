"""Shared by the whole-net comparisons with SpikingJelly 2.0's models (Spike-driven Transformer, MS-ResNet).

SpikingJelly's ``LIFNode(tau=2, decay_input=False)`` charges ``H = V - V / 2 + X`` (our ``LIF(decay=0.5)``'s
``h = 0.5 v + x``; halving is exact), fires at ``H >= th``, resets to 0, and with ``detach_reset`` and its
``Sigmoid(alpha=4)`` surrogate has our ``detach_reset`` and ``sigmoid`` gradient: ``spikingjelly_neuron`` and
``stbp_like`` set both sides so. Its default ``decay_input=True`` charges ``H = 0.5 V + 0.5 X`` instead: our neuron
with ``v = 2 V``, so threshold ``2 th`` and sigmoid ``alpha / 2``. Both nets run their convolutions, batch-norms and
classifier in the same order, so weights are matched by position.
"""

from __future__ import annotations

import torch
from torch import nn

from deepspike.methods import get_method

WEIGHTED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def spikingjelly_neuron(threshold: float) -> dict:
    """The keyword arguments that make SpikingJelly's ``LIFNode`` our stbp neuron of ``stbp_like(threshold)``."""
    from spikingjelly.activation_based import surrogate

    return {"tau": 2.0, "decay_input": False, "detach_reset": True, "v_threshold": threshold,
            "surrogate_function": surrogate.Sigmoid(alpha=4.0)}


def stbp_like(arch, timesteps: int, threshold: float, alpha: float = 4.0) -> nn.Module:
    """``arch`` built by stbp with SpikingJelly's neuron (module docstring), direct input, mean output, float64."""
    options = {"timesteps": timesteps, "encoder": "direct", "readout": "membrane", "norm": "bn", "decay": 0.5,
               "threshold": threshold, "reset": "zero", "surrogate": "sigmoid", "surrogate_args": {"alpha": alpha},
               "detach_reset": True}
    return get_method("stbp", options).build(arch).double()


def firing_batch_norms(net: nn.Module, threshold: float) -> None:
    """Batch-norm weights and shifts drawn so that the neurons after them fire some of the time."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.8 * threshold, 1.6 * threshold)
                module.bias.uniform_(-0.2 * threshold, 0.6 * threshold)


def weighted(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kind)]


def same_logits_then_backward(ours: nn.Module, theirs: nn.Module, image: torch.Tensor) -> None:
    """The two nets' logits for ``image`` must agree (float64, not all equal); then both backpropagate the same fixed
    weighting of them, for the caller to compare the gradients."""
    from spikingjelly.activation_based import functional

    want = theirs(image)
    functional.reset_net(theirs)
    got = ours(image)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    assert want.std() > 0
    weights = torch.linspace(-1.0, 1.0, want.numel(), dtype=torch.float64).reshape(want.shape)
    (want * weights).sum().backward()
    (got * weights).sum().backward()


def assert_same_logits_and_gradients(ours: nn.Module, theirs: nn.Module, image: torch.Tensor) -> None:
    """Copy ``theirs``' weights onto ``ours`` by position; the logits for ``image`` and, for a fixed weighting of
    them, every weight's gradient must agree (float64), and the gradient must reach the first convolution."""
    for kind in WEIGHTED:
        for mine, other in zip(weighted(ours, kind), weighted(theirs, kind), strict=True):
            state = other.state_dict()
            if getattr(mine, "bias", None) is None and "bias" in state:
                assert not state.pop("bias").any()  # a conv bias of theirs that ours lacks: zeroed by the caller
            mine.load_state_dict(state)
    same_logits_then_backward(ours, theirs, image)
    for kind in WEIGHTED:
        for mine, other in zip(weighted(ours, kind), weighted(theirs, kind), strict=True):
            torch.testing.assert_close(mine.weight.grad, other.weight.grad, rtol=1e-7, atol=1e-10)
    assert weighted(ours, nn.Conv2d)[0].weight.grad.abs().sum() > 0
