"""The spike-count surrogates of method ``ttfs_window`` against hand-computed values."""

from types import SimpleNamespace

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.ttfs_window import TtfsWindowOptions, check_exact_alpha, spike_surrogate
from deepspike.models import create_architecture


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


def _model(readout_values, hidden):
    """A stand-in net: the readout's scores ``[B, K]`` in a window of 3, hidden layers ``(values, window)``."""
    layers = [SimpleNamespace(last_values=v, window=torch.tensor(w)) for v, w in hidden]
    readout = SimpleNamespace(last_values=readout_values, window=torch.tensor(3.0))
    return SimpleNamespace(readout=readout, neuron_layers=lambda: layers)


def test_latency_cost_by_hand():
    # alpha 2, T_out 3: the largest scores 4, 8, -2 fire at offsets relu(3 - [2, 4, -1]) = [1, 0, 4], i.e. [1, 0, 4] / 3
    # of the window; mean 5/9, x latency_cost 0.5 (kills the mutants z * alpha, no clamp, no / T_out, no cost weight)
    method = get_method("ttfs_window", {"alpha": 2.0, "latency_cost": 0.5})
    z = torch.tensor([[4.0, 1.0], [8.0, 0.0], [-2.0, -5.0]])
    assert method.penalty(_model(z, [])).item() == pytest.approx(0.5 * 5 / 9)


def test_spike_cost_weighs_values_relative_to_their_windows():
    # windows 2 and 4: values [1, 0] / 2 (mean 0.25) and [2] / 4 (mean 0.5); L1 = 0.375, x spike_cost 0.3; a layer
    # without kept values is left out (kills the mutants that drop "/ window" or the cost weight)
    method = get_method("ttfs_window", {"spike_cost": 0.3})
    hidden = [(torch.tensor([[1.0, 0.0]]), 2.0), (torch.tensor([[2.0]]), 4.0), (None, 1.0)]
    assert method.penalty(_model(None, hidden)).item() == pytest.approx(0.3 * 0.375)


def test_build_gives_every_window_the_margin_and_keeps_values_only_for_the_costs():
    arch = create_architecture("zhang2021_fc400", num_classes=3, input_shape=(1, 4, 4), width=0.01)
    net = get_method("ttfs_window", {"margin": 1.5, "spike_cost": 0.1}).build(arch)
    assert {m.margin for m in (net.encoder, *net.neuron_layers(), net.readout)} == {1.5}
    assert all(m.keep_values for m in net.neuron_layers()) and not net.readout.keep_values


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_conversion_is_exact_only_at_alpha_one(alpha):
    check_exact_alpha(1.0, "--alpha=1")
    with pytest.raises(ConfigError, match="alpha = 1"):
        check_exact_alpha(alpha, f"--alpha={alpha}")


def test_a_cap_of_one_is_accepted():
    assert TtfsWindowOptions(spike_cost=1.0, spike_cost_cap=1.0).spike_cost_cap == 1.0


def test_init_from_a_net_that_does_not_map_is_refused():
    # a source lacking the body's weights (missing keys other than the ANN's windows) or carrying keys the net lacks
    arch = create_architecture("zhang2021_fc400", num_classes=3, input_shape=(1, 4, 4), width=0.01)
    method = get_method("ttfs_window", {})
    snn = method.build(arch)
    with pytest.raises(ConfigError, match="does not map onto ttfs_window"):
        method.init_from_run(snn, "ann", torch.nn.Module())
    extra = method.build(arch)
    extra.register_buffer("extra", torch.zeros(1))
    with pytest.raises(ConfigError, match="does not map onto ttfs_window: extra"):
        method.init_from_run(snn, "ttfs_window", extra)


@pytest.mark.parametrize("key, value", [("margin", 0.0), ("measure_batches", 0)])
def test_a_zero_margin_or_measure_batches_is_refused(key, value):
    with pytest.raises(ConfigError, match=f"method.{key}"):
        TtfsWindowOptions(**{key: value})
