"""The recurrent scan (one autograd node for the whole step loop) against a hand-worked net and against autograd
through the reference neuron loop, step by step (``tests/layers/test_recurrent.py``: when the layer uses it)."""

import itertools

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import recurrent_scan
from deepspike.neurons.dynamics import neuron_multistep
from deepspike.neurons.params import NeuronParams
from deepspike.neurons.recurrent_scan import recurrent_multistep, scan_supported

T, B, M = 9, 4, 6


def _autograd_loop(c, w, b, params, v0, s0):
    """``I_t = c_t + s_{t-1} W^T + b`` and one step of the reference (unfused) neuron loop, under autograd."""
    v, s, out = v0, s0, []
    for t in range(c.shape[0]):
        i = c[t] + s @ w.T + (0.0 if b is None else b)
        step, v = neuron_multistep(i.unsqueeze(0), params, v0=v, fused=False)
        s = step[0]
        out.append(s)
    return torch.stack(out), v


def _problem(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    c = (torch.rand(T, B, M, generator=g, dtype=dtype) * 1.2).requires_grad_(True)
    w = (torch.randn(M, M, generator=g, dtype=dtype) * 0.5).requires_grad_(True)
    b = (torch.randn(M, generator=g, dtype=dtype) * 0.1).requires_grad_(True)
    v0 = (torch.rand(B, M, generator=g, dtype=dtype) * 0.5).requires_grad_(True)
    s0 = (torch.rand(B, M, generator=g, dtype=dtype) < 0.3).to(dtype).requires_grad_(True)
    return c, w, b, v0, s0


def _loss(spikes, v):
    """Every spike and final membrane weighed differently, so each gradient entry is checked."""
    weights = torch.linspace(0.1, 1.0, spikes.numel(), dtype=spikes.dtype).reshape(spikes.shape)
    return (spikes * weights).sum() + (v * torch.linspace(-1.0, 1.0, v.numel(), dtype=v.dtype).reshape(v.shape)).sum()


CASES = list(itertools.product(["zero", "subtract", "none"], [False, True], [True, False], [True, False]))


@pytest.mark.parametrize(("reset", "detach_reset", "leak_grad", "with_bias"), CASES)
def test_spikes_membrane_and_every_gradient_equal_autograd_through_the_reference_loop(reset, detach_reset, leak_grad,
                                                                                      with_bias, monkeypatch):
    monkeypatch.setattr(recurrent_scan, "CHUNK", 4)  # T = 9 steps: backward chunks of 1, 4 and 4 steps
    params = NeuronParams(decay=0.8, threshold=0.6, reset=reset, surrogate="arctan", detach_reset=detach_reset,
                          leak_grad=leak_grad)
    c, w, b, v0, s0 = _problem()
    b = b if with_bias else None
    want_s, want_v = _autograd_loop(c, w, b, params, v0, s0)
    inputs = [x for x in (c, w, b, v0, s0) if x is not None]
    want_grads = torch.autograd.grad(_loss(want_s, want_v), inputs)
    got_s, got_v = recurrent_multistep(c, w, b, params, v0=v0, s0=s0)
    got_grads = torch.autograd.grad(_loss(got_s, got_v), inputs)
    assert torch.equal(got_s, want_s)
    assert 0.1 < got_s.mean() < 0.9  # both firing and silent neurons: every branch of the recursion is used
    torch.testing.assert_close(got_v, want_v)
    for got, want in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(got, want)
        assert got.abs().sum() > 0


def test_a_hand_worked_pair_of_neurons():
    """Two LIF neurons (decay 0.5, threshold 1, reset to zero); neuron 0 excites neuron 1 through V[1, 0] = 0.8.
    c = [[1.2, 0.1], [0.3, 0.1], [0, 0.5]]: step 0 h = (1.2, 0.1), s = (1, 0), v = (0, 0.1);
    step 1 h = (0.3, 0.05 + 0.1 + 0.8) = (0.3, 0.95), no spike; step 2 h = (0.15, 0.475 + 0.5) = (0.15, 0.975),
    no spike. With V[1, 0] = 1.0 neuron 1 fires at step 1 instead (h = 1.15)."""
    params = NeuronParams(decay=0.5, threshold=1.0, reset="zero", surrogate="arctan")
    c = torch.tensor([[[1.2, 0.1]], [[0.3, 0.1]], [[0.0, 0.5]]], dtype=torch.float64)
    w = torch.tensor([[0.0, 0.0], [0.8, 0.0]], dtype=torch.float64)
    spikes, v = recurrent_multistep(c, w, None, params)
    assert spikes[:, 0].tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    torch.testing.assert_close(v, torch.tensor([[0.15, 0.975]], dtype=torch.float64))
    spikes, v = recurrent_multistep(c, w * 1.25, None, params)
    assert spikes[:, 0].tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    torch.testing.assert_close(v, torch.tensor([[0.15, 0.5]], dtype=torch.float64))


def test_no_initial_state_is_rest_and_a_wrong_state_shape_is_one_line():
    params = NeuronParams(decay=0.9, threshold=0.5, reset="subtract", surrogate="fast_sigmoid")
    c, w, b, _, _ = _problem(1)
    zeros = torch.zeros(B, M, dtype=c.dtype)
    got = recurrent_multistep(c, w, b, params)
    want = recurrent_multistep(c, w, b, params, v0=zeros, s0=zeros)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    with pytest.raises(ConfigError, match="initial spikes shape"):
        recurrent_multistep(c, w, b, params, s0=torch.zeros(B + 1, M, dtype=c.dtype))


def test_float32_on_a_wider_layer_gives_the_loops_spikes_and_gradients():
    g = torch.Generator().manual_seed(3)
    c = (torch.rand(40, 8, 64, generator=g) * 0.9).requires_grad_(True)
    w = (torch.randn(64, 64, generator=g) * 0.15).requires_grad_(True)
    params = NeuronParams(decay=0.9, threshold=1.0, reset="zero", surrogate="fast_sigmoid")
    zeros = torch.zeros(8, 64)
    want_s, want_v = _autograd_loop(c, w, None, params, zeros, zeros)
    want = torch.autograd.grad(_loss(want_s, want_v), (c, w))
    got_s, got_v = recurrent_multistep(c, w, None, params)
    got = torch.autograd.grad(_loss(got_s, got_v), (c, w))
    assert torch.equal(got_s, want_s)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_scan_supported_refuses_what_it_cannot_run():
    params = NeuronParams(decay=0.9, threshold=1.0)
    c, w = torch.zeros(T, B, M), torch.zeros(M, M)
    assert scan_supported(c, w, params)
    assert not scan_supported(c.bfloat16(), w, params)
    assert not scan_supported(c[:0], w, params)  # no steps: the layer's loop returns the empty output
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not scan_supported(c, w, params)
