"""The masked and sliding parallel spiking neurons (``neurons.masked_psn``, ``neurons.sliding_psn``) against
SpikingJelly 2.0's ``MaskedPSN`` and ``SlidingPSN`` (run by ``make test-nir``, whose venv has SpikingJelly): the same
spikes and the same gradients of the input, the weights and the thresholds, with the arctan surrogate (SpikingJelly's
``ATan``, alpha 2) on both sides.

SpikingJelly adds a bias where we subtract a threshold (``bias = -b``), so its bias gradient is minus ours. Its sliding
neuron runs whole sequences as a Toeplitz matmul built row by row, and step by step from a queue of the last k inputs;
ours builds the matrix by indexing and carries the last k - 1 inputs between calls (``temporal_carry``), as our trained
masked neuron does (with its step count) where SpikingJelly's keeps a queue and a step counter.
"""

import pytest
import torch

from conformance.conftest import require
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.sliding_psn import SlidingPSN

T, B, N = 6, 3, 5


def _spikingjelly():
    require("spikingjelly", "make test-nir installs SpikingJelly")
    from spikingjelly.activation_based import neuron, surrogate

    return neuron, surrogate


def _grads(module, x, upstream):
    """Spikes of ``module(x)`` and the gradients of ``sum(spikes * upstream)``: input, weight, bias."""
    x = x.detach().clone().requires_grad_()
    s = module(x)
    (s * upstream).sum().backward()
    return s.detach(), x.grad, module.weight.grad, module.bias.grad


def _assert_same(ours, theirs, dtype):
    """Equal spikes and gradients on one random input (their bias gradient is minus our threshold's)."""
    x, upstream = torch.randn(T, B, N, dtype=dtype), torch.randn(T, B, N, dtype=dtype)
    s, gx, gw, gb = _grads(ours, x, upstream)
    s2, gx2, gw2, gb2 = _grads(theirs, x, upstream)
    assert torch.equal(s, s2)
    torch.testing.assert_close(gx, gx2)
    torch.testing.assert_close(gw, gw2)
    torch.testing.assert_close(gb, -gb2.view(gb.shape))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("masking", [0.0, 0.4, 1.0])
def test_masked_psn_matches_spikingjelly(masking, dtype):
    neuron, surrogate = _spikingjelly()
    torch.manual_seed(0)
    ours = MaskedPSN(T, 3, threshold=0.2, surrogate="arctan").to(dtype)
    with torch.no_grad():
        ours.weight.add_(0.3 * torch.randn(T, T, dtype=dtype))
        ours.masking.fill_(masking)
    theirs = neuron.MaskedPSN(k=3, T=T, lambda_init=masking, surrogate_function=surrogate.ATan(alpha=2.0),
                              step_mode="m").to(dtype)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
        theirs.bias.copy_(-ours.bias.view(T, 1))
    _assert_same(ours, theirs, dtype)


def test_trained_masked_psn_step_by_step_matches_spikingjelly_single_step_mode():
    """lambda = 1: ours one step per call inside ``temporal_carry``, theirs in single-step mode (its queue and step
    counter); the same spikes at every step."""
    neuron, surrogate = _spikingjelly()
    torch.manual_seed(6)
    ours = MaskedPSN(T, 3, threshold=0.2, surrogate="arctan").double()
    with torch.no_grad():
        ours.weight.add_(0.3 * torch.randn(T, T, dtype=torch.float64))
        ours.masking.fill_(1.0)
    theirs = neuron.MaskedPSN(k=3, T=T, lambda_init=1.0, surrogate_function=surrogate.ATan(alpha=2.0),
                              step_mode="s").double()
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
        theirs.bias.copy_(-ours.bias.view(T, 1))
    x = torch.randn(T, B, N, dtype=torch.float64)
    with torch.no_grad(), temporal_carry(ours):
        mine = torch.cat([ours(x[t:t + 1]) for t in range(T)])
    with torch.no_grad():
        theirs_steps = torch.stack([theirs(x[t]) for t in range(T)])
    assert torch.equal(mine, theirs_steps) and 0 < mine.sum() < mine.numel()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("order", [1, 3, 8])
def test_sliding_psn_matches_spikingjelly_on_whole_sequences(order, dtype):
    neuron, surrogate = _spikingjelly()
    torch.manual_seed(order)
    ours = SlidingPSN(order, threshold=0.3, surrogate="arctan").to(dtype)
    theirs = neuron.SlidingPSN(k=order, exp_init=True, surrogate_function=surrogate.ATan(alpha=2.0),
                               step_mode="m").to(dtype)
    assert torch.equal(ours.weight.detach(), theirs.weight.detach())  # both start at (..., 1/4, 1/2, 1)
    with torch.no_grad():
        ours.weight.add_(0.2 * torch.randn(order, dtype=dtype))
        theirs.weight.copy_(ours.weight)
        theirs.bias.fill_(-0.3)
    _assert_same(ours, theirs, dtype)


def test_sliding_psn_step_by_step_matches_spikingjelly_single_step_mode():
    neuron, surrogate = _spikingjelly()
    torch.manual_seed(5)
    ours = SlidingPSN(4, threshold=0.3, surrogate="arctan").double()
    theirs = neuron.SlidingPSN(k=4, surrogate_function=surrogate.ATan(alpha=2.0), step_mode="s").double()
    with torch.no_grad():
        ours.weight.add_(0.2 * torch.randn(4, dtype=torch.float64))
        theirs.weight.copy_(ours.weight)
        theirs.bias.fill_(-0.3)
    x = torch.randn(9, B, N, dtype=torch.float64)
    with torch.no_grad(), temporal_carry(ours):
        mine = torch.cat([ours(x[t:t + 1]) for t in range(9)])
    with torch.no_grad():
        theirs_steps = torch.stack([theirs(x[t]) for t in range(9)])
    assert torch.equal(mine, theirs_steps)
