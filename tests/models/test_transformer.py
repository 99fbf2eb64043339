"""The Spikformer spec: its token grid, its parameter count against SpikingJelly's and the paper's, the attention's
costs by hand, and the settings it refuses (SpikingJelly's own model is the live reference in
``tests/conformance/test_attention_against_spikingjelly.py``)."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.methods import create_model
from deepspike.models.costs import layer_costs
from deepspike.models.layer_specs import Attention, Pool, Residual
from deepspike.models.registry import create_architecture


@pytest.mark.parametrize(("side", "pools", "tokens"), [(32, 2, 8), (28, 2, 7), (8, 2, 2), (28, 0, 28), (9, 3, 2)])
def test_the_token_grid_is_the_input_halved_by_each_pool(side, pools, tokens):
    arch = create_architecture("spikformer", 10, (1, side, side), 1.0, dim=16, depth=1, heads=2, pools=pools)
    attention = next(v for v in arch.visits() if isinstance(v.layer, Attention))
    assert attention.input_shape == (16, tokens, tokens)
    assert isinstance(arch.layers[-3], Pool) and arch.layers[-3].kernel_size == tokens  # the token mean


def test_the_cifar_net_has_spikingjelly_and_the_papers_parameter_count():
    """SpikingJelly 2.0's ``spikformer_cifar10()`` holds 9,310,906 parameters, 9,281,050 of them in convolutions and
    the classifier (the rest batch-norm); the paper gives 9.32 M for Spikformer-4-384."""
    arch = create_architecture("spikformer", 10, (3, 32, 32), 1.0)
    assert sum(c.params for c in layer_costs(arch)) == 9_281_050
    net = create_model("spikformer", method="stbp", num_classes=10, norm="bn")
    assert sum(p.numel() for p in net.parameters()) == 9_310_906
    blocks = [layer for layer in arch.layers if isinstance(layer, Residual)]
    assert len(blocks) == 1 + 2 * 4  # the position embedding, then attention and MLP for each of 4 blocks


def test_attention_costs_by_hand():
    """C = 16 channels, 4 heads (d = 4), L = 2 x 2 tokens: 4 C^2 = 1024 weights; MACs 4 C^2 L + 2 C d L = 4096 +
    512."""
    arch = create_architecture("spikformer", 10, (1, 8, 8), 1.0, dim=16, depth=1, heads=4)
    cost = next(c for c in layer_costs(arch) if c.kind == "attention")
    assert (cost.params, cost.macs, cost.fan_in, cost.input_shape) == (1024, 4608, 16, (16, 2, 2))


@pytest.mark.parametrize("args", [{"dim": 20}, {"dim": 64, "heads": 3}, {"pools": 5}, {"mlp_ratio": 0}, {"heads": 0},
                                  {"depth": 1.5}, {"mlp_ratio": "abc"}, {"dim": True}])
def test_bad_sizes_are_refused_in_one_line(args):
    with pytest.raises(ConfigError, match="spikformer"):
        create_architecture("spikformer", 10, (3, 32, 32), 1.0, **{"dim": 64, "heads": 4, **args})
    with pytest.raises(ConfigError, match="square"):
        create_architecture("spikformer", 10, (3, 32, 16), 1.0, dim=64, heads=4)
    with pytest.raises(ConfigError, match="heads must be"):
        Attention(0)


def test_sequences_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="image-shaped input"):
        create_architecture("spikformer", 10, (700,), 1.0)
