"""The sequence model family and what a recurrent layer spec costs."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.models import create_architecture
from deepspike.models.costs import count_macs, count_parameters, layer_costs
from deepspike.models.spec import Flatten, Linear


def test_rsnn_layers_and_costs():
    arch = create_architecture("rsnn", num_classes=20, hidden=[128, 64])
    assert arch.input_shape == (700,)
    assert arch.layers == (Linear(128, recurrent=True), Linear(64, recurrent=True), Linear(20, act=False))
    costs = layer_costs(arch)
    # feed-forward N M plus feedback M M, per step: (700 + 128) 128, (128 + 64) 64, 64 * 20
    assert [c.params for c in costs] == [828 * 128, 192 * 64, 64 * 20]
    assert [c.fan_in for c in costs] == [828, 192, 64]
    assert count_parameters(arch) == count_macs(arch) == 828 * 128 + 192 * 64 + 64 * 20


def test_rsnn_without_recurrence_and_on_images():
    feed_forward = create_architecture("rsnn", num_classes=10, input_shape=(2, 4, 4), hidden=[8], recurrent=False)
    assert feed_forward.layers == (Flatten(), Linear(8), Linear(10, act=False))
    assert count_parameters(feed_forward) == 32 * 8 + 8 * 10
    with pytest.raises(ConfigError, match="rsnn hidden sizes"):
        create_architecture("rsnn", hidden=[])


@pytest.mark.parametrize("spec", [dict(act=False), dict(norm=True)])
def test_a_recurrent_layer_needs_spikes_and_no_batch_norm(spec):
    with pytest.raises(ConfigError, match="a recurrent layer needs act=True"):
        Linear(8, recurrent=True, **spec)


@pytest.mark.parametrize(("args", "message"), [
    (dict(hidden=12), "model 'rsnn': bad value 12 for model.args.hidden: expected a list of whole numbers"),
    (dict(hidden=[]), "rsnn hidden sizes must be a non-empty list of whole numbers >= 1"),
    (dict(hidden=["abc"]), "bad value \\['abc'\\]"),
    (dict(hidden=[8, True]), "whole numbers"),
    (dict(recurrent="maybe"), "model 'rsnn': bad value 'maybe' for model.args.recurrent: expected true or false"),
    (dict(dropout=2.0), "dropout probability must be a number in \\[0, 1\\), got 2.0"),
])
def test_bad_model_arguments_are_one_line_errors(args, message):
    with pytest.raises(ConfigError, match=message):
        create_architecture("rsnn", **args)
    if "hidden" in args and args["hidden"]:  # mlp takes no hidden layer
        with pytest.raises(ConfigError, match="model 'mlp': bad value .* for model.args.hidden"):
            create_architecture("mlp", **args)


def test_dsnn_layers_and_costs():
    arch = create_architecture("dsnn", num_classes=20, hidden=[64, 32], delays=25, dropout=0.4, batch_norm=True)
    assert arch.input_shape == (140,)
    assert [layer for layer in arch.layers if isinstance(layer, Linear)] == [
        Linear(64, norm=True, delays=25), Linear(32, norm=True, delays=25), Linear(20, act=False, delays=25)]
    # a delayed synapse delivers each spike once (N M accumulates per step) and has a weight and a position
    assert count_macs(arch) == 140 * 64 + 64 * 32 + 32 * 20
    assert count_parameters(arch) == 2 * count_macs(arch)
    plain = create_architecture("dsnn", num_classes=20, hidden=[64, 32], delays=1)
    assert not any(layer.delayed for layer in plain.layers) and count_parameters(plain) == count_macs(arch)


@pytest.mark.parametrize(("spec", "message"), [(dict(delays=-1), "delays must be a whole number of steps from 0"),
                                               (dict(delays=1025), "from 0 to 1024"),
                                               (dict(delays=2.5), "delays must be a whole number"),
                                               (dict(delays=3, recurrent=True), "either recurrent or delayed")])
def test_delay_spec_checks(spec, message):
    with pytest.raises(ConfigError, match=message):
        Linear(8, **spec)


@pytest.mark.parametrize(("args", "message"), [
    (dict(delays=0), "model 'dsnn': bad value 0 for model.args.delays: expected a whole number from 1"),
    (dict(batch_norm="yes"), "model 'dsnn': bad value 'yes' for model.args.batch_norm: expected true or false")])
def test_bad_dsnn_arguments(args, message):
    with pytest.raises(ConfigError, match=message):
        create_architecture("dsnn", **args)


@pytest.mark.parametrize("name", ["mlp", "rsnn"])
def test_spike_delay_marks_the_hidden_layers_only_and_bad_values_are_one_line(name):
    """``model.args.spike_delay: 1`` (Xylo's one step a hidden layer): every hidden ``Linear`` has ``spike_delay=1``,
    the output layer 0; 2 or true is refused naming the model and the valid values."""
    arch = create_architecture(name, num_classes=3, input_shape=(6,), hidden=[5, 4], spike_delay=1)
    assert [layer.spike_delay for layer in arch.layers if isinstance(layer, Linear)] == [1, 1, 0]
    with pytest.raises(ConfigError, match=rf"^model '{name}': bad value 2 for model.args.spike_delay: expected 0 "
                                          r"\(none\) or 1 \(each hidden layer's spikes reach the next layer one step "
                                          r"late, as on Xylo\)$"):
        create_architecture(name, num_classes=3, input_shape=(6,), spike_delay=2)
    with pytest.raises(ConfigError, match=r"spike_delay must be 0 \(none\) or 1 .* and 1 only on a layer with "
                                          r"act=True"):
        Linear(3, act=False, spike_delay=1)
