"""Method ``converted``: the checks of its options (the thresholds that ``deepspike convert`` writes)."""

import re

import pytest

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method


@pytest.mark.parametrize("thresholds, shown", [([True, 1.0], "True"), ([1.0, [0.5, False]], "False"),
                                               ([1e39, 1.0], "1e+39"), ([0.0], "0.0"), ([1.0, []], "[]")])
def test_thresholds_that_are_no_float32_number_above_zero_are_refused_at_load(thresholds, shown):
    # a boolean passed the isinstance(int) check and ran as a threshold of 1.0; 1e39 passed as finite and failed only
    # when the net was built, in a message that did not name method.thresholds
    with pytest.raises(ConfigError, match=rf"^method.thresholds must be numbers > 0 .* got {re.escape(shown)}$"):
        get_method("converted", {"thresholds": thresholds})


def test_the_largest_float32_threshold_and_per_channel_lists_are_taken():
    o = get_method("converted", {"thresholds": [3.4e38, [0.5, 2], 1]}).options
    assert o.thresholds == [3.4e38, [0.5, 2], 1]
