"""The spike-count surrogates of method ``ttfs_window`` against hand-computed values."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods.ttfs_window import TtfsWindowOptions, spike_surrogate


def _values():
    # two samples; layer 1 has 3 neurons, layer 2 has 1 (values relative to the window)
    return [torch.tensor([[0.0, 0.02, 0.5], [0.1, 0.0, 0.0]]), torch.tensor([[0.04], [1.0]])]


def test_l1_surrogate_is_the_mean_over_layers_of_each_layers_mean_value():
    layer1 = (0.02 + 0.5 + 0.1) / 6
    layer2 = (0.04 + 1.0) / 2
    assert spike_surrogate(_values(), None).item() == pytest.approx((layer1 + layer2) / 2)


def test_capped_surrogate_by_hand():
    # cap 0.05: min(x / 0.05, 1) = [0, 0.4, 1 | 1, 0, 0] and [0.8 | 1]; 4.2 over 2 samples x 4 neurons
    assert spike_surrogate(_values(), 0.05).item() == pytest.approx(4.2 / 8)


def test_capped_surrogate_tends_to_the_fraction_of_neurons_that_fire():
    fired = 5 / 8  # non-zero values
    assert spike_surrogate(_values(), 1e-6).item() == pytest.approx(fired)


def test_capped_surrogate_pushes_only_weak_neurons():
    values = [torch.tensor([[0.01, 0.5]], requires_grad=True)]
    spike_surrogate(values, 0.05).backward()
    assert values[0].grad[0].tolist() == pytest.approx([1 / 0.05 / 2, 0.0])


@pytest.mark.parametrize("cap", [0.0, 1.5])
def test_bad_cap_is_a_config_error(cap):
    with pytest.raises(ConfigError, match="spike_cost_cap"):
        TtfsWindowOptions(spike_cost_cap=cap)


@pytest.mark.parametrize("cap", [1e-320, 1e-39])
def test_a_cap_float32_cannot_hold_is_refused_not_a_nan_loss(cap):
    # x / cap runs in float32, where 1e-320 is 0: 0 / 0 made the surrogate NaN and training stopped as "diverged"
    # (lower optim.lr); 1e-39 is subnormal there, and the gradient 1 / cap past float32's largest number
    assert torch.isnan(spike_surrogate(_values(), 1e-320))
    with pytest.raises(ConfigError, match="method.spike_cost_cap"):
        TtfsWindowOptions(spike_cost_cap=cap)
    assert TtfsWindowOptions(spike_cost_cap=torch.finfo(torch.float32).tiny).spike_cost_cap > 0


@pytest.mark.parametrize("key, value", [("alpha", 1e-40), ("alpha", 1e39), ("margin", 1e39), ("latency_cost", 1e39),
                                        ("spike_cost", 1e39)])
def test_slopes_and_margins_past_float32_are_refused(key, value):
    # float32 windows: margin 1e39 failed at the first batch with a traceback ("value cannot be converted to type float
    # without overflow"), a subnormal alpha made every coded value x / alpha infinite and the loss NaN, costs of 1e39
    # (inf in float32) made the training loss infinite
    with pytest.raises(ConfigError, match=f"method.{key}"):
        TtfsWindowOptions(**{key: value})
