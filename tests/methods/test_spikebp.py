"""Method ``spikebp`` (Lee et al. 2020): its options' defaults against the paper's constants."""

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
