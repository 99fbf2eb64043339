"""Spike function: Heaviside forward (H(0) = 1), hand-computed surrogate derivatives backward."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.neurons import get_surrogate, list_surrogates


def _grad_at(surrogate, points):
    """d s / d x at each point, through autograd."""
    x = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    surrogate(x).sum().backward()
    return x.grad.tolist()


def test_list_surrogates():
    assert list_surrogates() == ["arctan", "fast_sigmoid", "rectangular", "sigmoid"]


@pytest.mark.parametrize("name", ["rectangular", "sigmoid", "fast_sigmoid", "arctan"])
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
    ],
)
def test_default_parameters_by_hand(name, points, expected):
    """No parameter given: the module table's defaults (a 1, alpha 4, k 25, alpha 2), hand values of h(x)."""
    assert _grad_at(get_surrogate(name), points) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "params", "area", "half_width"),
    [
        ("rectangular", {"a": 0.3}, 1.0, 1.0),  # fine grid: the box edges cost at most 2 * dx / a
        ("sigmoid", {"alpha": 5.0}, 1.0, 500.0),
        ("arctan", {"alpha": 2.0}, 1.0, 500.0),  # tail beyond 500: 1 - (2/pi) atan(500 pi) ~ 4e-4
        ("fast_sigmoid", {"k": 10.0}, 2 / 10.0, 500.0),  # int 1/(1+k|x|)^2 = 2/k
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
    with pytest.raises(ConfigError, match="unknown surrogate 'boxcar'; valid: arctan, fast_sigmoid"):
        get_surrogate("boxcar")
    with pytest.raises(ConfigError, match="unknown parameter 'alpha' for surrogate 'rectangular'; valid: a"):
        get_surrogate("rectangular", alpha=2)
    with pytest.raises(ConfigError, match="must be a finite number > 0"):
        get_surrogate("sigmoid", alpha=0)


def test_repr_and_equality():
    s = get_surrogate("fast_sigmoid", k=10)
    assert repr(s) == "fast_sigmoid(k=10)"
    assert s == get_surrogate("fast_sigmoid", k=10.0) and s != get_surrogate("fast_sigmoid")
