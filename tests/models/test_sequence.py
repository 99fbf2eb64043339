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
    (dict(hidden=12), "rsnn hidden sizes must be a non-empty list of whole numbers >= 1"),
    (dict(hidden=["abc"]), "got \\['abc'\\]"),
    (dict(hidden=[8, True]), "whole numbers"),
    (dict(recurrent="maybe"), "rsnn recurrent must be true or false"),
    (dict(dropout=2.0), "dropout probability must be a number in \\[0, 1\\), got 2.0"),
])
def test_bad_model_arguments_are_one_line_errors(args, message):
    with pytest.raises(ConfigError, match=message):
        create_architecture("rsnn", **args)
    if "hidden" in args:
        with pytest.raises(ConfigError, match="mlp hidden sizes"):
            create_architecture("mlp", **args)
