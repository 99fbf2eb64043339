"""Spike function: Heaviside forward (H(0) = 1), hand-computed surrogate derivatives backward."""

import math
import re

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import get_surrogate, list_surrogates
from deepspike.neurons.surrogate import BUILT_IN


def _grad_at(surrogate, points):
    """d s / d x at each point, through autograd."""
    x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    surrogate(x).sum().backward()
    return x.grad.tolist()


def test_list_surrogates():
    assert list_surrogates() == ["arctan", "erf", "fast_sigmoid", "piecewise_quadratic", "rectangular", "sigmoid",
                                 "straight_through", "triangular"]
    assert set(BUILT_IN) == set(list_surrogates())


@pytest.mark.parametrize("name", BUILT_IN)
def test_forward_is_heaviside_with_tie_firing(name):
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 3.0])
    assert get_surrogate(name)(x).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_rectangular_gradient_by_hand():
    # a = 1: h = 1 on |x| < 0.5 (strict), else 0.
    assert _grad_at(get_surrogate("rectangular"), [0.3, -0.49, 0.5, -0.5, 0.7]) == [1, 1, 0, 0, 0]
    # a = 0.5: h = 1/0.5 = 2 on |x| < 0.25.
    assert _grad_at(get_surrogate("rectangular", a=0.5), [0.2, 0.3, -0.1]) == [2, 0, 2]


def test_sigmoid_gradient_by_hand():
    # alpha = 4, x = 0: sig = 1/2 -> 4 * 1/2 * 1/2 = 1.
    # x = ln(3)/4: sig(ln 3) = 3/4 -> 4 * 3/4 * 1/4 = 0.75 (and the same at -x by symmetry).
    g = _grad_at(get_surrogate("sigmoid", alpha=4), [0.0, math.log(3) / 4, -math.log(3) / 4])
    assert g == pytest.approx([1.0, 0.75, 0.75], abs=1e-12)


def test_fast_sigmoid_gradient_by_hand():
    # k = 25: x = 0 -> 1; x = 0.04 -> 1/(1+1)^2 = 1/4; x = -0.12 -> 1/(1+3)^2 = 1/16.
    g = _grad_at(get_surrogate("fast_sigmoid", k=25), [0.0, 0.04, -0.12])
    assert g == pytest.approx([1.0, 0.25, 1 / 16], abs=1e-12)


def test_arctan_gradient_by_hand():
    # alpha = 2: h = 1/(1 + (pi x)^2): x = 0 -> 1; x = 1/pi -> 1/2; x = 2/pi -> 1/5.
    g = _grad_at(get_surrogate("arctan", alpha=2), [0.0, 1 / math.pi, -2 / math.pi])
    assert g == pytest.approx([1.0, 0.5, 0.2], abs=1e-12)


def test_triangular_gradient_by_hand():
    # a = 1: h = max(0, 1 - |x|): x = 0 -> 1, 0.25 -> 3/4, -0.5 -> 1/2, 1 -> 0 (the tent's foot), 1.5 -> 0.
    assert _grad_at(get_surrogate("triangular"), [0.0, 0.25, -0.5, 1.0, 1.5]) == pytest.approx([1, 0.75, 0.5, 0, 0])
    # a = 0.5: h = 2 max(0, 1 - 2|x|): x = 0 -> 2, 0.25 -> 1, -0.4 -> 2 * 0.2 = 0.4, 0.6 -> 0.
    g = _grad_at(get_surrogate("triangular", a=0.5), [0.0, 0.25, -0.4, 0.6])
    assert g == pytest.approx([2.0, 1.0, 0.4, 0.0], abs=1e-12)


def test_erf_gradient_by_hand():
    # alpha = 2: h = (2/sqrt(pi)) exp(-4 x^2): x = 0 -> 2/sqrt(pi), x = 1/2 -> (2/sqrt(pi))/e, x = -1 -> .../e^4.
    g = _grad_at(get_surrogate("erf", alpha=2), [0.0, 0.5, -1.0])
    c = 2 / math.sqrt(math.pi)
    assert g == pytest.approx([c, c / math.e, c / math.e**4], abs=1e-12)


def test_piecewise_quadratic_gradient_by_hand():
    # SpikingJelly's form: h = alpha - alpha^2 |x| on |x| <= 1/alpha, else 0. alpha = 2: x = 0 -> 2,
    # x = 0.25 -> 2 - 4 * 0.25 = 1, x = -0.4 -> 2 - 1.6 = 0.4, x = 0.5 (the foot) -> 0, x = 0.7 -> 0.
    g = _grad_at(get_surrogate("piecewise_quadratic", alpha=2), [0.0, 0.25, -0.4, 0.5, 0.7])
    assert g == pytest.approx([2.0, 1.0, 0.4, 0.0, 0.0], abs=1e-12)
    # the same tent as triangular with a = 1/alpha
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(get_surrogate("piecewise_quadratic", alpha=2).derivative(x),
                               get_surrogate("triangular", a=0.5).derivative(x))


def test_straight_through_gradient_by_hand():
    # h = 1 everywhere (no parameter), far from the threshold too.
    assert _grad_at(get_surrogate("straight_through"), [-30.0, -0.1, 0.0, 0.2, 7.0]) == [1.0] * 5
    with pytest.raises(ConfigError, match="unknown parameter 'a' for surrogate 'straight_through'; valid: \\(none\\)"):
        get_surrogate("straight_through", a=1.0)


@pytest.mark.parametrize(
    ("name", "points", "expected"),
    [
        # a = 1 (wu2019 eq. 14 with the module table's default): h = 1 on |x| < 1/2, else 0
        ("rectangular", [0.0, 0.4, -0.6], [1.0, 1.0, 0.0]),
        # alpha = 4: h = alpha sig(alpha x) (1 - sig(alpha x)); x = 0 -> 4 * 1/2 * 1/2 = 1; x = ln(3)/4 -> 4 * 3/4 * 1/4
        ("sigmoid", [0.0, math.log(3) / 4], [1.0, 0.75]),
        # k = 25 (SuperSpike; snntorch's fast_sigmoid slope 25): 1/(1 + k|x|)^2; x = 0.04 -> 1/(1+1)^2, -0.12 -> 1/4^2
        ("fast_sigmoid", [0.0, 0.04, -0.12], [1.0, 0.25, 1 / 16]),
        # alpha = 2 (snntorch's atan alpha 2): (alpha/2) / (1 + (pi alpha x / 2)^2); x = 0 -> 1, x = 1/pi -> 1/2
        ("arctan", [0.0, 1 / math.pi], [1.0, 0.5]),
        # a = 1: the tent max(0, 1 - |x|) (peak 1 like rectangular's a = 1); x = 0.3 -> 0.7, x = -1.2 -> 0
        ("triangular", [0.0, 0.3, -1.2], [1.0, 0.7, 0.0]),
        # alpha = 2 (SpikingJelly's Erf default): (2/sqrt(pi)) exp(-4 x^2)
        ("erf", [0.0, 0.5], [2 / math.sqrt(math.pi), 2 / math.sqrt(math.pi) / math.e]),
        # alpha = 1 (SpikingJelly's PiecewiseQuadratic default): 1 - |x| on |x| <= 1
        ("piecewise_quadratic", [0.0, -0.6, 1.0], [1.0, 0.4, 0.0]),
        ("straight_through", [0.0, 3.0], [1.0, 1.0]),
    ],
)
def test_default_parameters_by_hand(name, points, expected):
    """No parameter given: the module table's defaults (a 1, alpha 4, k 25, alpha 2, a 1, alpha 2, alpha 1, none),
    hand values of h(x)."""
    assert _grad_at(get_surrogate(name), points) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "params", "area", "half_width"),
    [
        ("rectangular", {"a": 0.3}, 1.0, 1.0),  # fine grid: the box edges cost at most 2 * dx / a
        ("sigmoid", {"alpha": 5.0}, 1.0, 500.0),
        ("arctan", {"alpha": 2.0}, 1.0, 500.0),  # tail beyond 500: 1 - (2/pi) atan(500 pi) ~ 4e-4
        ("fast_sigmoid", {"k": 10.0}, 2 / 10.0, 500.0),  # int 1/(1+k|x|)^2 = 2/k
        ("triangular", {"a": 0.3}, 1.0, 1.0),  # a tent of half-width a and peak 1/a
        ("erf", {"alpha": 2.0}, 1.0, 50.0),
        ("piecewise_quadratic", {"alpha": 1.5}, 1.0, 1.0),
    ],
)
def test_surrogate_area(name, params, area, half_width):
    x = torch.linspace(-half_width, half_width, 2_000_001, dtype=torch.float64)
    h = get_surrogate(name, **params).derivative(x)
    assert torch.trapezoid(h, x).item() == pytest.approx(area, abs=1e-3)


def test_gradient_is_scaled_by_upstream_gradient():
    x = torch.tensor([0.1, 2.0], requires_grad=True)
    (get_surrogate("rectangular")(x) * torch.tensor([3.0, 5.0])).sum().backward()
    assert x.grad.tolist() == [3.0, 0.0]


def test_unknown_name_and_bad_params():
    with pytest.raises(ConfigError, match="unknown surrogate 'boxcar'; valid: arctan, erf, fast_sigmoid, "
                       "piecewise_quadratic, rectangular, sigmoid, straight_through, triangular"):
        get_surrogate("boxcar")
    with pytest.raises(ConfigError, match="unknown parameter 'alpha' for surrogate 'rectangular'; valid: a"):
        get_surrogate("rectangular", alpha=2)
    with pytest.raises(ConfigError, match="must be a number > 0 within float32's range"):
        get_surrogate("sigmoid", alpha=0)
    for bad in (1e39, 1e-46, True):  # infinite or zero in the float32 kernels; a boolean is not a number here
        with pytest.raises(ConfigError, match=re.escape(f"alpha={bad!r} must be a number > 0 within float32")):
            get_surrogate("sigmoid", alpha=bad)
    with pytest.raises(ConfigError, match=re.escape("alpha=(an integer of 1329 bits) must be a number > 0 within")):
        get_surrogate("sigmoid", alpha=10**400)  # float() of it raised OverflowError, a traceback


def test_repr_and_equality():
    s = get_surrogate("fast_sigmoid", k=10)
    assert repr(s) == "fast_sigmoid(k=10)"
    assert s == get_surrogate("fast_sigmoid", k=10.0) and s != get_surrogate("fast_sigmoid")


def _tent_step(x, a):
    """The primitive of the tent (1/a) max(0, 1 - |x|/a): 0 below -a, 1/2 + x/a - x|x|/(2a^2) on [-a, a], 1 above."""
    xc = x.clamp(-a, a)
    return 0.5 + xc / a - xc * xc.abs() / (2 * a * a)


# name -> (parameters, the smooth step G with G' = h (module table), written out independently of the module)
PRIMITIVES = {
    "rectangular": ({"a": 1.0}, lambda x: (x + 0.5).clamp(0, 1)),
    "sigmoid": ({"alpha": 4.0}, lambda x: torch.sigmoid(4 * x)),
    "fast_sigmoid": ({"k": 25.0}, lambda x: x / (1 + 25 * x.abs())),  # d/dx x/(1 + k|x|) = 1/(1 + k|x|)^2
    "arctan": ({"alpha": 2.0}, lambda x: 0.5 + torch.atan(math.pi * x) / math.pi),
    "triangular": ({"a": 0.8}, lambda x: _tent_step(x, 0.8)),
    # SpikingJelly's PiecewiseQuadratic primitive on |x| <= 1/alpha: -alpha^2 x|x|/2 + alpha x + 1/2 (alpha = 1.5)
    "piecewise_quadratic": ({"alpha": 1.5}, lambda x: (lambda c: -1.125 * c * c.abs() + 1.5 * c + 0.5)(
        x.clamp(-1 / 1.5, 1 / 1.5))),
    "erf": ({"alpha": 2.0}, lambda x: torch.special.erfc(-2 * x) / 2),  # SpikingJelly's Erf primitive
    "straight_through": ({}, lambda x: x),
}


class _SmoothStep(torch.autograd.Function):
    """Forward: the smooth step ``G``; backward: ``grad * h(x)`` of the surrogate, so that gradcheck compares the
    surrogate derivative with finite differences of ``G``."""

    @staticmethod
    def forward(ctx, x, step, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return step(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None, None


@pytest.mark.parametrize("name", BUILT_IN)
def test_surrogate_is_the_derivative_of_its_smooth_step(name):
    """gradcheck (float64 finite differences): each h is the derivative of the smoothed step it stands for (the
    spike function itself is a step, whose finite differences are 0, so this is where gradcheck is meaningful).
    The points avoid the kinks of the piecewise ones (|x| = 0.5; 0.8; 2/3; 0)."""
    assert set(PRIMITIVES) == set(BUILT_IN)
    params, step = PRIMITIVES[name]
    x = torch.tensor([-2.3, -1.1, -0.77, -0.45, -0.21, -0.03, 0.04, 0.33, 0.61, 0.79, 1.3], dtype=torch.float64,
                     requires_grad=True)
    surrogate = get_surrogate(name, **params)
    assert torch.autograd.gradcheck(lambda t: _SmoothStep.apply(t, step, surrogate), (x,), eps=1e-6, atol=1e-6)


def _snntorch_grad(spike_fn, x):
    x = x.clone().requires_grad_()
    spike_fn(x).sum().backward()
    return x.grad


def test_straight_through_equals_snntorch():
    """snnTorch's ``straight_through_estimator()`` on ``x = mem - threshold`` (the same convention as ours; it fires at
    ``x > 0``, ours at ``x >= 0``, so no point is exactly 0): gradient 1 everywhere, forward spikes equal."""
    snn_surrogate = pytest.importorskip("snntorch.surrogate")
    x = torch.tensor([-3.0, -0.2, -1e-3, 1e-3, 0.4, 5.0])
    torch.testing.assert_close(_grad_at(get_surrogate("straight_through"), x.tolist()),
                               _snntorch_grad(snn_surrogate.straight_through_estimator(), x).double().tolist())
    assert torch.equal(get_surrogate("straight_through")(x), snn_surrogate.straight_through_estimator()(x))


def test_snntorch_triangular_is_not_a_tent():
    """Why ``triangular`` is not compared with snnTorch: its ``triangular(threshold)`` (1.0) backward is
    ``+threshold`` below the threshold and ``-threshold`` at or above it, whatever ``|x|`` (a sign, not a tent),
    so no choice of ``a`` matches it; ours is the tent ``(1/a) max(0, 1 - |x|/a)`` (module table)."""
    snn_surrogate = pytest.importorskip("snntorch.surrogate")
    x = torch.tensor([-3.0, -0.2, 0.1, 2.0])
    assert _snntorch_grad(snn_surrogate.triangular(threshold=1.0), x).tolist() == [1.0, 1.0, -1.0, -1.0]
    assert _grad_at(get_surrogate("triangular", a=1.0), x.tolist()) == pytest.approx([0.0, 0.8, 0.9, 0.0])


def test_an_arctan_alpha_whose_constant_overflows_float32_is_refused():
    """arctan's ``pi/2 alpha`` was inf in float32 for alpha above 2.17e38 (accepted: within float32's range), so
    ``h(0)`` was NaN in the torch loop and the fused kernels alike; now refused in one line, the largest alpha kept
    finite."""
    largest = float(torch.finfo(torch.float32).max) / (math.pi / 2)
    message = "surrogate 'arctan' parameter alpha=3e+38 must be at most 2.166e+38"
    with pytest.raises(ConfigError, match=re.escape(message)):
        get_surrogate("arctan", alpha=3e38)
    assert math.isfinite(get_surrogate("arctan", alpha=largest).derivative(torch.zeros(1)).item())
    assert get_surrogate("erf", alpha=3e38).params["alpha"] == 3e38  # others' constants stay finite
