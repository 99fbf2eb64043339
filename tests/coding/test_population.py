"""Population coding (``coding.population``): hand-worked Gaussian responses, Norse's documented example
(``population_encode([0, 0.5, 1], 3)``) as the special case the module docstring names, the feature-major layout of
images and feature vectors, and one-line refusals."""

import math

import pytest
import torch

from deepspike.coding.population import BOHTE_WIDTH, population_centres, population_code
from deepspike.core.errors import ConfigError


def test_norse_documented_example_is_our_code_with_their_width():
    # Norse's docstring: population_encode(tensor([0, 0.5, 1]), 3) = [[1, .8825, .6065], [.8825, 1, .8825],
    # [.6065, .8825, 1]]: centres 0, 0.5, 1, exp(-scale d^2 / 2) with scale 1; ours with width (P - 1) / scale^1.5 = 2.
    r = population_code(torch.tensor([0.0, 0.5, 1.0]), 3, low=0.0, high=1.0, width=2.0).view(3, 3)
    expected = torch.tensor([[1.0, 0.8825, 0.6065], [0.8825, 1.0, 0.8825], [0.6065, 0.8825, 1.0]])
    assert torch.allclose(r, expected, atol=5e-5)


def test_hand_worked_gaussian_fields():
    # P = 5 on [0, 1]: centres 0, .25, .5, .75, 1, spacing .25, sigma = (2/3) .25 = 1/6.
    # x = .25: r_i = exp(-(.25 - c_i)^2 / (2 / 36)) = exp(-18 (.25 - c_i)^2): exp(-1.125), 1, exp(-1.125),
    # exp(-4.5), exp(-10.125).
    r = population_code(torch.tensor([[0.25]]), 5)
    expected = [math.exp(-1.125), 1.0, math.exp(-1.125), math.exp(-4.5), math.exp(-10.125)]
    assert r.shape == (1, 5) and torch.allclose(r[0], torch.tensor(expected))
    assert population_centres(5, 0.0, 1.0).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and BOHTE_WIDTH == 1 / 1.5
    # a value outside the range still drives the nearest field: x = 1.5 -> exp(-18 * .25) on the last centre
    assert population_code(torch.tensor([1.5]), 5)[-1].item() == pytest.approx(math.exp(-4.5))


def test_images_and_feature_vectors_widen_feature_major():
    x = torch.rand(2, 3, 4, 5)  # [B, C, H, W]
    r = population_code(x, 4, low=-1.0, high=2.0, width=0.8, dim=1)
    assert r.shape == (2, 12, 4, 5)
    for c in range(3):
        for i in range(4):
            centre = -1.0 + i * 1.0
            expected = torch.exp(-((x[:, c] - centre) ** 2) / (2 * 0.8**2))
            assert torch.allclose(r[:, c * 4 + i], expected)
    f = torch.rand(6, 7)  # [B, F] -> [B, 3F]: value f's fields at 3f .. 3f + 2
    wide = population_code(f, 3)
    assert wide.shape == (6, 21) and torch.allclose(wide[:, 3 * 4 + 1], torch.exp(-((f[:, 4] - 0.5) ** 2)
                                                                                 / (2 * (0.5 / 1.5) ** 2)))


@pytest.mark.parametrize("args, message", [
    ((1, 0.0, 1.0, 1.0), "^population_size must be an integer from 2 to 1024, got 1$"),
    ((1025, 0.0, 1.0, 1.0), "^population_size must be an integer from 2 to 1024, got 1025$"),
    ((True, 0.0, 1.0, 1.0), "^population_size must be an integer from 2 to 1024, got True$"),
    ((2.0, 0.0, 1.0, 1.0), "^population_size must be an integer from 2 to 1024, got 2.0$"),
    ((4, 1.0, 1.0, 1.0), "^population_low < population_high and population_width > 0 must be finite numbers, got "
                         "1.0, 1.0, 1.0$"),
    ((4, 0.0, float("nan"), 1.0), "must be finite numbers, got 0.0, nan, 1.0$"),
    ((4, 0.0, 1.0, 0.0), "must be finite numbers, got 0.0, 1.0, 0.0$"),
    ((4, 0.0, 1.0, "1"), "must be finite numbers, got 0.0, 1.0, '1'$"),
    ((4, 0, 10**400, 1.0), "must be finite numbers, got 0, 1000"),  # an OverflowError from torch.linspace
    ((4, 0.0, 1.0, 1e39), "must be finite numbers, got 0.0, 1.0, 1e[+]?39$"),  # beyond float32
])
def test_bad_settings_are_refused_in_one_line(args, message):
    with pytest.raises(ConfigError, match=message):
        population_code(torch.rand(3), *args)


def test_integer_input_is_refused():
    with pytest.raises(ConfigError, match=r"^population coding needs analog \(floating-point\) input, got torch.int64"):
        population_code(torch.arange(3), 4)


@pytest.mark.parametrize("shape, dim", [((3, 4), 2), ((3, 4), -3), ((3, 4), 1.0), ((), -1)])
def test_a_dim_that_is_no_axis_is_refused(shape, dim):
    """Before: ``dim % x.dim()`` took dim=2 (or -3) of a ``[3, 4]`` batch as axis 0 and widened the batch to
    ``[6, 4]`` without a word; a 0-d input raised ZeroDivisionError."""
    with pytest.raises(ConfigError, match="is no axis of an input of shape"):
        population_code(torch.rand(shape), 2, dim=dim)


@pytest.mark.parametrize("low, high, width", [
    (0.0, 1.0, 1e-30),  # sigma^2 = 1e-60 was 0 in float32: 0 / 0 = NaN on the centres
    (-1e38, 3e38, BOHTE_WIDTH),  # (x - c)^2 and 2 sigma^2 both overflowed: inf / inf = NaN everywhere
    (-3e38, 3e38, 1e38),  # sigma = 3e76 beyond float32: a field so wide that r = 1
    (0.0, 1.0, 1e-300),  # sigma rounds to 0 in float32
])
def test_extreme_accepted_settings_give_the_float64_responses_not_nan(low, high, width):
    """Before: these settings passed ``check_population`` and gave NaN responses (float32 and float16 input)."""
    values = [0.0, 0.3, 0.5, 1.0]
    centres = [low + i * (high - low) / 2 for i in range(3)]
    sigma = width * (high - low) / 2
    expected = [math.exp(-0.5 * min(abs(v - c) / sigma, 1e100) ** 2)  # a plain float64 loop (z capped: exp = 0)
                for v in values for c in centres]
    for dtype, tol in ((torch.float32, 1e-6), (torch.float16, 1e-3)):
        r = population_code(torch.tensor(values, dtype=dtype), 3, low=low, high=high, width=width)
        assert r.dtype == dtype and not r.isnan().any()
        torch.testing.assert_close(r.double(), torch.tensor(expected, dtype=torch.float64), rtol=tol, atol=tol)
