"""A neuron run once on all its steps and again a step at a time inside ``temporal_carry``, with the same gradient
weights: what the tests of carried state compare (spikes, input gradients and the state kept between calls)."""

from dataclasses import dataclass

import torch

from deepspike.neurons.carry import temporal_carry


@dataclass
class SteppedRun:
    whole: torch.Tensor  # spikes of one call on x [T, ...]
    parts: torch.Tensor  # spikes of T one-step calls, concatenated
    whole_grad: torch.Tensor  # d(sum(spikes * weights)) / dx of each
    parts_grad: torch.Tensor
    kept: object  # neuron.state after the last step (a tensor or a tuple of them)


def whole_and_stepped(neuron: torch.nn.Module, x: torch.Tensor, generator: torch.Generator) -> SteppedRun:
    """Run ``neuron`` on ``x [T, ...]`` whole and step by step; the loss weights are drawn from ``generator``."""
    whole_x = x.clone().requires_grad_()
    whole = neuron(whole_x)
    weights = torch.randn(whole.shape, generator=generator)
    (whole.float() * weights).sum().backward()
    parts_x = x.clone().requires_grad_()
    with temporal_carry(neuron):
        parts = torch.cat([neuron(parts_x[t:t + 1]) for t in range(x.shape[0])])
        kept = neuron.state
    (parts.float() * weights).sum().backward()
    return SteppedRun(whole, parts, whole_x.grad, parts_x.grad, kept)
