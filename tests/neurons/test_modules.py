"""In-place fused neurons: the same spikes and gradients as out-of-place, with the input's memory reused."""

import itertools

import pytest
import torch
from torch import nn

from deepspike.layers.lean_avg_pool import LeanAvgPool2d
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons import LIF, NeuronParams, neuron_multistep
from deepspike.neurons.modules import SpikingNeuron

pytest.importorskip("numba")


def _layer_then_neuron(params, inplace, x, weight):
    """``s = LIF(W x_t)`` for x ``[T, B, N]``; returns (s, dL/dx, dL/dW) for ``L = sum(c * s)``."""
    x = x.clone().requires_grad_()
    w = weight.clone().requires_grad_()
    current = (x.flatten(0, 1) @ w.t()).view(x.shape[0], x.shape[1], -1)  # [T*B, M] -> [T, B, M] (a view)
    s, _ = neuron_multistep(current, params, inplace=inplace)
    c = torch.linspace(-1.0, 1.0, s.numel()).view(s.shape)
    (s * c).sum().backward()
    return s.detach(), x.grad, w.grad


COMBOS = list(itertools.product(("zero", "subtract"), (False, True), ("rectangular", "arctan")))


@pytest.mark.parametrize(("reset", "detach", "surrogate"), COMBOS)
def test_inplace_gives_the_same_spikes_and_gradients_bit_for_bit(reset, detach, surrogate):
    g = torch.Generator().manual_seed(COMBOS.index((reset, detach, surrogate)))
    params = NeuronParams(decay=0.6, threshold=0.5, reset=reset, detach_reset=detach, surrogate=surrogate)
    x, weight = torch.randn(6, 4, 9, generator=g), torch.randn(7, 9, generator=g) * 0.5
    s0, gx0, gw0 = _layer_then_neuron(params, False, x, weight)
    s1, gx1, gw1 = _layer_then_neuron(params, True, x, weight)
    assert 0 < s0.mean() < 1
    assert torch.equal(s0, s1) and torch.equal(gx0, gx1) and torch.equal(gw0, gw1)


def test_membrane_is_written_over_the_input_and_kept_when_asked_for():
    params = NeuronParams(decay=0.5, threshold=0.7)
    x = (torch.randn(5, 3, 4) * 0.8).requires_grad_()
    current = x * 1.0  # a fresh non-leaf tensor
    ptr = current.data_ptr()
    s, v, h = neuron_multistep(current, params, return_membrane=True, inplace=True)
    assert h.data_ptr() == ptr  # h lives in the input's memory
    _, _, h_ref = neuron_multistep(x.detach() * 1.0, params, return_membrane=True)
    assert torch.equal(h.detach(), h_ref)
    kept = h.detach().clone()
    (s.sum() + h.sum()).backward()
    assert torch.equal(h.detach(), kept)  # the caller holds h: backward must not write over it


def test_another_user_of_the_input_fails_loudly_not_silently():
    params = NeuronParams(decay=0.5, threshold=0.7)
    x = torch.randn(5, 3, 4, requires_grad=True)
    current = x * 1.0
    scale = torch.ones(4, requires_grad=True)
    other = current * scale  # mul saves `current` for scale's gradient
    s, _ = neuron_multistep(current, params, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (s.sum() + other.sum()).backward()


def test_second_backward_through_an_inplace_neuron_is_refused():
    params = NeuronParams(decay=0.5, threshold=0.7)
    x = torch.randn(5, 3, 4, requires_grad=True)
    s, _ = neuron_multistep(x * 1.0, params, inplace=True)
    s.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        s.sum().backward()


def _step_grads(model, x, y):
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def test_stbp_builder_uses_inplace_neurons_and_lean_pools_with_unchanged_gradients():
    arch = create_architecture("stbp_mnist", num_classes=10, input_shape=(1, 12, 12), width=0.25)
    method = get_method("stbp", {"timesteps": 3, "eval_timesteps": 3, "encoder": "direct", "vote_group": 1})
    torch.manual_seed(0)
    model = method.build(arch)
    neurons = [m for m in model.body.modules() if isinstance(m, SpikingNeuron)]
    pools = [m for m in model.modules() if isinstance(m, LeanAvgPool2d)]
    assert neurons and all(n.inplace for n in neurons) and len(pools) == 2
    x, y = torch.rand(4, 1, 12, 12), torch.tensor([0, 1, 2, 3])
    fast = _step_grads(model, x, y)
    for n in neurons:
        n.inplace = False
    reference = _step_grads(model, x, y)
    assert any(g.abs().sum() > 0 for g in reference)
    for a, b in zip(fast, reference):
        assert torch.equal(a, b)
    assert isinstance(LIF(inplace=True), SpikingNeuron) and "inplace=True" in repr(LIF(inplace=True))
