"""``SlidingPSN`` (k weights slid over time): spikes against hand-computed values and an explicit loop over steps,
gradients against autograd of that loop, any number of steps, calls in pieces with the carried inputs against one
call on all steps, the fused and torch paths alike, refusals."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.sliding_psn import SlidingPSN
from deepspike.neurons.surrogate import get_surrogate


@pytest.fixture(params=["fused", "torch"])
def path(request, monkeypatch):
    """Both implementations of the whole-sequence call: the numba PSN kernels (CPU float32) and torch operations."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", "1" if request.param == "fused" else "0")
    return request.param


def loop_membrane(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The reference: ``H[t] = sum_i w[i] x[t - k + 1 + i]`` over the steps that exist, one step and tap at a time."""
    k = w.shape[0]
    steps = []
    for t in range(x.shape[0]):
        h = torch.zeros_like(x[0])
        for i in range(k):
            j = t - k + 1 + i
            if j >= 0:
                h = h + w[i] * x[j]
        steps.append(h)
    return torch.stack(steps)


def _neuron(order: int, weights: list[float], threshold: float, **kwargs) -> SlidingPSN:
    m = SlidingPSN(order, threshold=threshold, **kwargs)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(weights))
    return m


def test_hand_computed_spikes(path):
    """k = 2, w = (0.5, 1), b = 1; x = 0.75, 0.625, 0.25: H = 0.75, 0.375 + 0.625 = 1.0, 0.3125 + 0.25 = 0.5625
    (exact in float32): one spike, at step 1 (H - b >= 0 fires)."""
    m = _neuron(2, [0.5, 1.0], threshold=1.0)
    x = torch.tensor([0.75, 0.625, 0.25]).view(3, 1, 1)
    assert m(x).flatten().tolist() == [0.0, 1.0, 0.0]


def test_initial_weights_are_the_truncated_no_reset_lif():
    assert SlidingPSN(4, decay=0.5).weight.tolist() == [0.125, 0.25, 0.5, 1.0]  # the paper's (..., 1/4, 1/2, 1)
    assert SlidingPSN(1).weight.tolist() == [1.0]


@pytest.mark.parametrize(("order", "steps"), [(3, 7), (4, 1), (5, 3), (1, 4)])
def test_spikes_equal_the_explicit_loop_at_any_step_count(order, steps):
    """float64 (the torch path): spikes of ``H(loop_membrane - b)`` for step counts below, at and above k."""
    torch.manual_seed(order * 10 + steps)
    m = SlidingPSN(order, threshold=0.2).double()
    with torch.no_grad():
        m.weight.copy_(torch.randn(order, dtype=torch.float64))
    x = torch.randn(steps, 3, 2, 4, dtype=torch.float64)
    expected = (loop_membrane(x, m.weight.detach()) - 0.2 >= 0).double()
    assert torch.equal(m(x), expected)


def test_gradients_equal_autograd_of_the_loop(path):
    torch.manual_seed(0)
    m = SlidingPSN(3, decay=0.6, threshold=0.4, surrogate="sigmoid", surrogate_args={"alpha": 3.0})
    with torch.no_grad():
        m.weight.add_(0.1 * torch.randn(3))
    x = torch.randn(6, 4, 5, requires_grad=True)
    g = torch.randn(6, 4, 5)
    (m(x) * g).sum().backward()
    w = m.weight.detach().clone().requires_grad_()
    b = m.bias.detach().clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    (get_surrogate("sigmoid", alpha=3.0)(loop_membrane(x2, w) - b) * g).sum().backward()
    torch.testing.assert_close(m.weight.grad, w.grad)
    torch.testing.assert_close(m.bias.grad, b.grad)
    torch.testing.assert_close(x.grad, x2.grad)


def test_calls_in_pieces_equal_one_call(path):
    """Inside ``temporal_carry`` each call starts from the k - 1 inputs before it: pieces of 2, 1 and 4 steps give the
    whole call's spikes (dyadic values: every sum exact) and, kept in the graph, its gradients."""
    m = _neuron(3, [0.25, 0.5, 1.0], threshold=0.5, surrogate="arctan")
    x = (torch.randint(-8, 9, (7, 2, 3)) / 8.0).requires_grad_()
    whole = m(x)
    (whole * torch.arange(7.0).view(7, 1, 1)).sum().backward()
    grads = (x.grad.clone(), m.weight.grad.clone(), m.bias.grad.clone())
    x.grad = m.weight.grad = m.bias.grad = None
    with temporal_carry(m):
        pieces = torch.cat([m(x[:2]), m(x[2:3]), m(x[3:])])
    assert torch.equal(pieces, whole)
    (pieces * torch.arange(7.0).view(7, 1, 1)).sum().backward()
    for got, want in zip((x.grad, m.weight.grad, m.bias.grad), grads, strict=True):
        torch.testing.assert_close(got, want)
    assert m.state is None  # dropped after the block


def test_one_step_at_a_time_keeps_only_the_last_inputs():
    m = SlidingPSN(3)
    x = torch.rand(5, 2, 4)
    with torch.no_grad(), temporal_carry(m):
        steps = torch.cat([m(x[t:t + 1]) for t in range(5)])
        assert torch.equal(m.state, x[3:])  # the k - 1 = 2 inputs before the next step
    with torch.no_grad():
        assert torch.equal(steps, m(x))


def test_a_repeated_input_step_gives_the_full_input_results():
    """Direct encoding feeds one step repeated T times (a stride-0 view): the fused kernel's shortcut."""
    torch.manual_seed(2)
    m = SlidingPSN(2, threshold=0.3, surrogate="arctan")
    base = torch.randn(3, 4, requires_grad=True)
    s = m(base.expand(5, 3, 4))
    (s * torch.arange(5.0).view(5, 1, 1)).sum().backward()
    got = (s.detach(), base.grad.clone(), m.weight.grad.clone())
    base.grad = m.weight.grad = None
    full = base.detach().unsqueeze(0).repeat(5, 1, 1).requires_grad_()
    s2 = m(full)
    (s2 * torch.arange(5.0).view(5, 1, 1)).sum().backward()
    assert torch.equal(got[0], s2)
    torch.testing.assert_close(got[1], full.grad.sum(0))
    torch.testing.assert_close(got[2], m.weight.grad)


def test_refusals_and_empty_input():
    with pytest.raises(ConfigError, match="order k >= 1 \\(a whole number\\), got 0"):
        SlidingPSN(0)
    with pytest.raises(ConfigError, match="got 2.5"):
        SlidingPSN(2.5)
    with pytest.raises(ConfigError):
        SlidingPSN(2)(torch.ones(3, 2, dtype=torch.long))
    assert SlidingPSN(2)(torch.zeros(0, 2, 3)).shape == (0, 2, 3)


@pytest.mark.parametrize("second", [(1, 3, 4), (1, 2, 5), (1, 2, 4, 1)])
def test_carried_inputs_of_another_shape_are_one_line(second):
    # as every neuron's carried state (neurons.dynamics.check_initial_state): a stream fed a batch of another size was
    # a RuntimeError from torch.cat ("Sizes of tensors must match except in dimension 0")
    m = SlidingPSN(3)
    with temporal_carry(m):
        m(torch.rand(2, 2, 4))
        with pytest.raises(ConfigError, match=r"^carried inputs \(2, 4\) per step do not match one step of the input"):
            m(torch.rand(*second))


@pytest.mark.parametrize("order", [16_385, 10**12])
def test_an_order_beyond_the_longest_psn_window_is_one_line(order):
    """k = 10**12 asked torch for 8 TB of weights: an allocator traceback when the net was built (from a recipe's
    method.psn_order too); 16,384 steps, the largest PSN's T, still builds."""
    with pytest.raises(ConfigError, match=f"order k={order} is above 16,384") as caught:
        SlidingPSN(order)
    assert "\n" not in str(caught.value)
    assert SlidingPSN(16_384).weight.shape == (16_384,)
