"""Architecture specs: shape inference, validation, registry, and hand-counted costs."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import (
    Concat,
    Conv,
    Flatten,
    Linear,
    Pool,
    Residual,
    create_architecture,
    list_models,
)
from deepspike.models.costs import count_macs, count_parameters, layer_costs
from deepspike.models.spec import Architecture, output_shape


def test_conv_and_pool_shapes():
    # (28 + 2*1 - 3) // 2 + 1 = 14
    assert output_shape(Conv(8, 3, stride=2, padding=1), (1, 28, 28)) == (8, 14, 14)
    assert output_shape(Pool("avg", 2), (8, 14, 14)) == (8, 7, 7)
    assert output_shape(Pool("max", 3, stride=2), (8, 7, 7)) == (8, 3, 3)  # (7 - 3)//2 + 1
    assert output_shape(Flatten(), (8, 3, 3)) == (72,)


def test_residual_and_concat_shapes():
    block = Residual(body=(Conv(4, 3, padding=1), Conv(4, 3, padding=1, act=False)))
    assert output_shape(block, (4, 6, 6)) == (4, 6, 6)
    inception = Concat(branches=((Conv(2, 1),), (Conv(3, 3, padding=1),), (Pool("max", 1), Conv(5, 1))))
    assert output_shape(inception, (4, 6, 6)) == (10, 6, 6)
    with pytest.raises(ConfigError, match="residual branches disagree"):
        output_shape(Residual(body=(Conv(8, 3, padding=1),)), (4, 6, 6))


def test_bad_specs_are_rejected():
    with pytest.raises(ConfigError, match="needs a flat input"):
        output_shape(Linear(10), (1, 8, 8))
    with pytest.raises(ConfigError, match="does not fit"):
        output_shape(Conv(4, 5), (1, 3, 3))
    with pytest.raises(ConfigError, match="expected \\(10,\\)"):
        Architecture("x", (Flatten(), Linear(5, act=False)), (1, 2, 2), 10)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Conv(4, 0), "kernel_size must be a whole number >= 1, got 0"),
    (lambda: Conv(4, -1), "kernel_size"), (lambda: Conv(4, 3, stride=0), "stride must be a whole number >= 1"),
    (lambda: Conv(4, 3, padding=-1), "padding must be a whole number >= 0"),
    (lambda: Conv(4.5, 3), "out_channels must be a whole number >= 1, got 4.5"), (lambda: Conv("4", 3), "'4'"),
    (lambda: Linear(0), "out_features must be a whole number >= 1, got 0"), (lambda: Linear(3.5), "3.5"),
    (lambda: Pool("avg", "2"), "kernel_size must be a whole number"), (lambda: Pool("avg", 2.5), "2.5"),
    (lambda: Pool("max", 2, stride=0), "stride"),
    (lambda: Pool("avg", 4, 2, padding=1.5), "padding must be a whole number >= 0, got 1.5"),
    (lambda: Pool("avg", 4, 2, padding=True), "padding must be a whole number >= 0, got True"),
    (lambda: Pool("max", 3, padding="1"), "padding must be a whole number >= 0, got '1'"),
    (lambda: Concat(()), "needs at least one branch"),
    (lambda: Conv(8, 3, bias="no"), "bias must be True or False, got 'no'"), (lambda: Conv(8, 3, act=None), "act"),
    (lambda: Conv(8, 3, norm=1), "norm must be True or False, got 1"),
    (lambda: Linear(16, recurrent=1), "recurrent must be True or False, got 1"),
    (lambda: Linear(16, act="false"), "act must be True or False, got 'false'"), (lambda: Linear(4, bias=0), "bias")])
def test_layer_fields_that_are_no_sizes_are_refused_when_the_spec_is_made(make, message):
    """A sweep found these building empty layers, dividing by zero, or crashing in torch with a traceback; a pool's
    padding of 1.5 crashed ``count_macs`` (TypeError), True was taken as 1 and "1" failed with TypeError; a flag of
    text or a number was read as its truth: ``Conv(8, 3, bias="no")`` was a biased conv of 8 more weights."""
    with pytest.raises(ConfigError, match=message):
        make()


def test_lenet_costs_by_hand():
    arch = create_architecture("lenet", num_classes=10)
    costs = {c.name: c for c in layer_costs(arch)}
    # conv1: 20 x 1 x 5 x 5 = 500 weights, 24 x 24 positions -> 288,000 MACs
    assert (costs["0"].params, costs["0"].macs) == (500, 500 * 24 * 24)
    # conv2: 50 x 20 x 25 = 25,000 weights on 8 x 8 -> 1,600,000 MACs
    assert (costs["2"].params, costs["2"].macs) == (25_000, 25_000 * 64)
    # fc: 800 x 200 and 200 x 10
    assert costs["5"].params == 160_000 and costs["6"].params == 2_000
    # avg pools: 20*12*12 and 50*4*4 outputs, 4 accumulates each
    assert costs["1"].macs == 20 * 144 * 4 and costs["3"].macs == 50 * 16 * 4
    assert count_parameters(arch) == 500 + 25_000 + 160_000 + 2_000
    assert count_macs(arch) == 288_000 + 1_600_000 + 160_000 + 2_000 + 11_520 + 3_200


def test_biased_conv_and_linear_costs_by_hand():
    """A bias adds one parameter per output channel / feature and one accumulate per output value."""
    arch = Architecture("biased", (Conv(4, 3, bias=True), Flatten(), Linear(3, act=False, bias=True)), (1, 5, 5), 3)
    costs = {c.kind: c for c in layer_costs(arch)}
    # conv: 4 x 1 x 3 x 3 = 36 weights + 4 biases; output 4 x 3 x 3 = 36 values (5 - 3 + 1 = 3), each 9 MACs + 1 bias
    assert (costs["conv"].params, costs["conv"].macs) == (36 + 4, 36 * 9 + 36)
    # linear: 36 -> 3 is 108 weights + 3 biases; 108 MACs + 3 bias accumulates
    assert (costs["linear"].params, costs["linear"].macs) == (108 + 3, 108 + 3)
    assert count_parameters(arch) == 40 + 111
    assert count_macs(arch) == 360 + 111


def test_biased_registered_net_counts_the_torch_parameters():
    """``vgg`` without batch-norm has biased convs and FC layers: the spec count equals the hand count and the
    number of parameters of the torch model the ``ann`` method builds from the spec."""
    arch = create_architecture("vgg", blocks=[[4], [8]], hidden=[16], batch_norm=False)
    # conv 1 -> 4: 36 + 4; conv 4 -> 8: 288 + 8; 28 -> 14 -> 7 after the pools, 8 x 7 x 7 = 392 -> 16: 6272 + 16;
    # classifier 16 -> 10: 160 + 10
    hand = 40 + 296 + 6288 + 170
    torch_count = sum(p.numel() for p in get_method("ann", {}).build(arch).parameters())
    assert count_parameters(arch) == hand == torch_count == 6794


def test_width_scales_channels():
    arch = create_architecture("lenet", num_classes=10, width=0.5)
    assert arch.layers[0].out_channels == 10 and arch.layers[2].out_channels == 25


def test_registry_errors():
    with pytest.raises(ConfigError, match="unknown model 'nope'; valid: .*lenet"):
        create_architecture("nope")
    with pytest.raises(ConfigError, match="model 'lenet' has no argument 'depth'; valid: dropout, padding"):
        create_architecture("lenet", depth=3)
    with pytest.raises(ConfigError, match="num_classes must be >= 2"):
        create_architecture("lenet", num_classes=1)


def test_every_registered_model_resolves():
    names = [e.name for e in list_models()]
    assert {"lenet", "mlp", "scnn_digits", "stbp_mnist"} <= set(names)
    for entry in list_models():
        arch = create_architecture(entry.name, num_classes=10)
        assert count_parameters(arch) > 0


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Residual(Conv(4, 3, padding=1)), "Residual: body must be a tuple of layer specs, got Conv"),
    (lambda: Residual((Conv(4, 3, padding=1),), shortcut=None), "Residual: shortcut must be a tuple"),
    (lambda: Concat(((Conv(2, 1)), (Conv(3, 1)))), "Concat: branch 0 must be a tuple of layer specs, got Conv"),
    (lambda: Concat(Conv(2, 1)), "Concat: branches must be a tuple")])
def test_a_block_given_a_layer_where_its_branch_tuple_belongs_is_refused_when_made(make, message):
    """``Residual((Conv(...)))`` (a one-layer tuple without its comma) was accepted and every walk of the spec then
    failed with TypeError: 'Conv' object is not iterable."""
    with pytest.raises(ConfigError, match=message):
        make()
    assert output_shape(Residual([Conv(4, 3, padding=1)]), (4, 6, 6)) == (4, 6, 6)  # a list is a sequence too
