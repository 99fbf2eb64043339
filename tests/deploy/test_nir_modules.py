"""The modules an imported NIR graph is made of (``deploy.nir_modules``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.deploy.nir_modules import NirNetwork, PerNeuronIntegrator
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.neurons.modules import IF


def _reference(x: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """``v_t = decay v_{t-1} + x_t`` in float64, ``[T, B, K]``."""
    v, out = torch.zeros(x.shape[1:], dtype=torch.float64), []
    for x_t in x.double():
        v = decay.double() * v + x_t
        out.append(v)
    return torch.stack(out)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_per_neuron_integrator_keeps_a_float32_trace_on_low_precision_input(dtype):
    """Accumulated in the input's dtype, the trace of ``0.999 v + 0.0011`` stalled at 0.5 (bfloat16) or 0.75
    (float16) where the float64 one reaches 1.04 after 3000 steps; now each ``v_t`` is the float64 value rounded once
    (within 1% relative)."""
    decay = torch.tensor([0.999, 0.9, 0.5])
    x = torch.full((3000, 2, 3), 0.0011).to(dtype)
    out = PerNeuronIntegrator(decay)(x)
    ref = _reference(x, decay)
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-6)


def test_per_neuron_integrator_matches_the_float64_recurrence_in_float32():
    torch.manual_seed(0)
    decay = torch.tensor([0.0, 0.3, 0.95, 1.0])
    x = torch.randn(20, 3, 4)
    torch.testing.assert_close(PerNeuronIntegrator(decay)(x).double(), _reference(x, decay), rtol=1e-5, atol=1e-5)


def test_a_net_cast_to_bfloat16_keeps_the_integrators_decays():
    """``.to(torch.bfloat16)`` rounded the decay buffer too: 0.999 became 1, so the trace of a constant input grew
    without bound (3.3 after 3000 steps of 0.0011 where the float64 trace is 1.04)."""
    decay = torch.tensor([0.999, 0.9])
    module = torch.nn.Sequential(PerNeuronIntegrator(decay)).to(torch.bfloat16)
    assert module[0].decay.dtype == torch.float32 and torch.equal(module[0].decay, decay)
    x = torch.full((3000, 1, 2), 0.0011).to(torch.bfloat16)
    torch.testing.assert_close(module(x).double(), _reference(x, decay), rtol=1e-2, atol=1e-6)


def _net() -> NirNetwork:
    linear = nn.Linear(4, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.5, 0.1, 0.2, 0.3], [0.0, 0.4, 0.1, 0.2], [0.3, 0.3, 0.0, 0.1]]))
        linear.bias.zero_()
    return NirNetwork(nn.Sequential(TimeDistributed(linear), IF(threshold=0.7)), {}, (4,))


def test_a_numpy_array_or_nested_lists_run_as_the_tensor_would():
    """A numpy array (float64, numpy's default) or nested lists ended in "AttributeError: 'numpy.ndarray' object has
    no attribute 'dim'"; now they become a tensor of the weights' dtype."""
    net = _net()
    frames = np.random.default_rng(0).integers(0, 2, size=(5, 2, 4))
    expected = net(torch.from_numpy(frames).float())
    assert expected.sum() > 0
    torch.testing.assert_close(net(frames.astype(np.float64)), expected, rtol=0, atol=0)
    torch.testing.assert_close(net(frames.tolist()), expected, rtol=0, atol=0)


@pytest.mark.parametrize("x", ["abc", None, [[[1.0, 0.0]], [[1.0]]], np.full((2, 1, 4), "a")])
def test_input_that_is_no_array_of_numbers_is_refused_in_one_line(x):
    with pytest.raises(ConfigError, match=r"^NIR network input must be a tensor or an array of numbers "
                                          r"\[T, B, \.\.\.\], got \w+ \([^\n]*\)$"):
        _net()(x)
