"""``register_surrogate``: a surrogate derivative of one's own, its refusals, its gradient through a LIF layer (the
registered function, on the unfused loop), and the fused paths' fallback / refusal."""

import math

import pytest
import torch

import deepspike as ds
from deepspike.core.errors import ConfigError
from deepspike.neurons import LIF, NeuronParams, get_surrogate, list_surrogates, neuron_multistep
from deepspike.neurons import surrogate as surrogate_module
from deepspike.neurons.fused import fused_supported
from deepspike.neurons.learnable_dynamics import learnable_multistep
from deepspike.neurons.surrogate import register_surrogate


def _gauss(x: torch.Tensor, width: float) -> torch.Tensor:
    """h(x) = exp(-x^2 / (2 width^2)) (peak 1)."""
    return torch.exp(-(x**2) / (2 * width**2))


def _other_gauss(x: torch.Tensor, width: float) -> torch.Tensor:
    return torch.exp(-(x**2) / width)


@pytest.fixture
def gauss():
    """``gauss`` (width 0.5 by default) registered for one test, removed afterwards."""
    register_surrogate("gauss", width=0.5)(_gauss)
    yield "gauss"
    surrogate_module._OWN.pop("gauss", None)
    surrogate_module._OWN_DEFAULTS.pop("gauss", None)


def test_registered_surrogate_is_a_surrogate(gauss):
    assert ds.register_surrogate is register_surrogate and "register_surrogate" in ds.__all__
    assert gauss in list_surrogates()
    s = get_surrogate(gauss)
    assert repr(s) == "gauss(width=0.5)" and s == get_surrogate(gauss, width=0.5)
    x = torch.tensor([-0.5, 0.0, 1.0], requires_grad=True)
    assert s(x).tolist() == [0.0, 1.0, 1.0]  # forward: the Heaviside step, H(0) = 1
    s(x).sum().backward()
    # width 0.5: h = exp(-2 x^2): x = -0.5 -> e^-0.5, 0 -> 1, 1 -> e^-2
    assert x.grad.tolist() == pytest.approx([math.exp(-0.5), 1.0, math.exp(-2.0)], rel=1e-6)
    x.grad = None
    get_surrogate(gauss, width=1.0)(x).sum().backward()  # a parameter given: h = exp(-x^2 / 2)
    assert x.grad.tolist() == pytest.approx([math.exp(-0.125), 1.0, math.exp(-0.5)], rel=1e-6)
    with pytest.raises(ConfigError, match="unknown parameter 'alpha' for surrogate 'gauss'; valid: width"):
        get_surrogate(gauss, alpha=1.0)
    with pytest.raises(ConfigError, match="must be a number > 0 within float32's range"):
        get_surrogate(gauss, width=-1.0)


def test_registration_refusals(gauss):
    with pytest.raises(TypeError, match="other than rectangular"):
        register_surrogate("triangular")(_gauss)  # a built-in name
    with pytest.raises(TypeError, match="non-empty string"):
        register_surrogate("")
    with pytest.raises(TypeError, match="takes a factory function"):
        register_surrogate("not_callable")(3.0)
    with pytest.raises(ConfigError, match="parameter width=0.0 must be a number > 0 within float32's range"):
        register_surrogate("zero_width", width=0.0)
    with pytest.raises(ConfigError, match="parameter width='abc' must be a number > 0 within float32's range"):
        register_surrogate("text_width", width="abc")
    with pytest.raises(ConfigError, match="surrogate 'gauss' is already registered"):
        register_surrogate(gauss, width=1.0)(_other_gauss)
    register_surrogate(gauss, width=0.25)(_gauss)  # the same function again (a re-run cell): replaces the defaults
    assert get_surrogate(gauss).params == {"width": 0.25}
    assert "not_callable" not in list_surrogates() and "zero_width" not in list_surrogates()


def test_tiny_lif_layer_trains_with_the_registered_gradient(gauss):
    """One step (T = 1): s = H(W x - th), L = sum(w_out s), so dL/dW = (w_out * h(W x - th)) x^T with h the
    registered exp(-2 u^2); then a few SGD steps over T = 4 bring the firing rate towards a target."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 3, bias=False)
    lif = LIF(decay=0.5, threshold=0.3, surrogate=gauss)
    x, w_out = torch.randn(1, 5, 4), torch.randn(1, 5, 3)
    (lif(linear(x)) * w_out).sum().backward()
    u = (x[0] @ linear.weight.T - 0.3).detach()
    expected = (w_out[0] * torch.exp(-2 * u**2)).T @ x[0]
    torch.testing.assert_close(linear.weight.grad, expected)

    target = torch.full((3,), 0.5)
    xs = torch.randn(4, 16, 4)
    opt = torch.optim.SGD(linear.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((lif(linear(xs)).mean((0, 1)) - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_fused_paths_fall_back_or_refuse(gauss):
    """The fused kernels implement the built-in surrogates only: a registered one runs on the reference loop (same
    result as ``fused=False``) and ``fused=True`` refuses it in one line naming it."""
    pytest.importorskip("numba")
    params = NeuronParams(decay=0.8, threshold=0.5, surrogate=gauss)
    x = (torch.randn(5, 3, 7, generator=torch.Generator().manual_seed(1)) + 0.3).requires_grad_()
    assert not fused_supported(x, params)
    assert fused_supported(x, NeuronParams(decay=0.8, threshold=0.5, surrogate="triangular"))
    with pytest.raises(ConfigError, match="fused neuron update needs .*surrogate 'gauss'"):
        neuron_multistep(x, params, fused=True)
    s, _ = neuron_multistep(x, params)
    (gx,) = torch.autograd.grad(s.sum(), x)
    s_ref, _ = neuron_multistep(x, params, fused=False)
    (gx_ref,) = torch.autograd.grad(s_ref.sum(), x)
    assert torch.equal(s, s_ref) and torch.equal(gx, gx_ref)
    k, th = torch.tensor(0.6), torch.tensor(0.5)
    with pytest.raises(ConfigError, match="fused learnable neuron update needs .*surrogate 'gauss'"):
        learnable_multistep(x, k, th, params, fused=True)
    s_l, _ = learnable_multistep(x, k, th, params)  # automatic: the reference step
    assert torch.equal(s_l, learnable_multistep(x, k, th, params, fused=False)[0])
