"""Method ``spikebp`` (Lee et al. 2020): its options' defaults against the paper's constants."""

import re

import pytest

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.spikebp import SpikeBpOptions


def test_defaults_are_lee2020_constants():
    """lee2020's constants as the method docstring and docs/methods/spikebp.md cite them: LIF leak
    exp(-1/tau_m) = 0.99 (tau_m = 100 steps), threshold 1, 2x2 spiking average pooling with threshold 0.75."""
    options = SpikeBpOptions()
    assert options.leak == 0.99
    assert options.threshold == 1.0
    assert options.pool_threshold == 0.75
    assert get_method("spikebp", {}).options.pool_threshold == 0.75


@pytest.mark.parametrize("key", ["threshold", "pool_threshold"])
@pytest.mark.parametrize("value", [1e39, 0.0, -1.0, 1e-39, 1e-320])
def test_thresholds_beyond_float32_or_not_positive_are_refused_by_the_options_in_one_line(key, value):
    """A float32 membrane reads 1e39 as inf: the options took it and only the build refused it, 'spikebp
    threshold=1e+39 must be a finite number > 0' (no method key; 1e39 is finite), and a pool threshold of a net
    without pooling was taken silently."""
    expected = (rf"^bad value {re.escape(repr(value))} for method.{key}: expected > 0, from float32's smallest normal "
                r"1.175e-38 to its largest 3.403e\+38$")
    with pytest.raises(ConfigError, match=expected):
        get_method("spikebp", {key: value})


def test_the_largest_float32_threshold_is_accepted():
    assert get_method("spikebp", {"threshold": 3.4e38, "pool_threshold": 3.4e38}).options.threshold == 3.4e38
