"""The Spikformer spec: its token grid, its parameter count against SpikingJelly's and the paper's, the attention's
costs by hand, and the settings it refuses (SpikingJelly's own model is the live reference in
``tests/conformance/test_attention_against_spikingjelly.py``)."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.methods import create_model
from deepspike.models.costs import layer_costs
from deepspike.models.layer_specs import Activation, Attention, Conv, Pool, Residual
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


@pytest.mark.parametrize(("name", "heads"), [("spikformer", 4), ("sdt", 4), ("qkformer", [1, 2, 4])])
def test_an_mlp_ratio_beyond_any_net_is_refused_in_one_line(name, heads):
    """mlp_ratio 1e308 (finite) made ``int(dim * mlp_ratio)`` of inf: OverflowError: cannot convert float infinity to
    integer, a traceback from a recipe's model.args.mlp_ratio."""
    with pytest.raises(ConfigError, match=f"^{name}: model.args.mlp_ratio must be a finite number > 0 and at most "
                                          "65536, got 1e[+]308$"):
        create_architecture(name, 10, (3, 32, 32), 1.0, dim=64, heads=heads, mlp_ratio=1e308)
    assert create_architecture(name, 10, (3, 32, 32), 1.0, dim=64, heads=heads, mlp_ratio=65536)  # the bound: taken


def test_sequences_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="image-shaped input"):
        create_architecture("spikformer", 10, (700,), 1.0)


@pytest.mark.parametrize(("pooling", "tokens"), [("0011", 8), ("1111", 2), ("0000", 32), ("0101", 8)])
def test_the_sdt_token_grid_is_the_input_halved_by_each_pool(pooling, tokens):
    arch = create_architecture("sdt", 10, (3, 32, 32), 1.0, dim=16, depth=1, heads=2, pooling=pooling)
    attention = next(v for v in arch.visits() if isinstance(v.layer, Attention))
    assert attention.input_shape == (16, tokens, tokens) and attention.layer.mixing == "sdsa"
    assert isinstance(arch.layers[-4], Pool) and arch.layers[-4].kernel_size == tokens  # the token mean
    assert isinstance(arch.layers[-3], Activation)  # SDT's head neuron fires on the mean current


def test_every_sdt_residual_is_a_membrane_shortcut():
    """Each SEW add junction's body opens with a lone neuron and ends without one, and no convolution reads the
    currents of the stream: the stem's fourth layer and every body's last have act=False."""
    arch = create_architecture("sdt", 10, (3, 32, 32), 1.0)
    blocks = [layer for layer in arch.layers if isinstance(layer, Residual)]
    assert len(blocks) == 1 + 2 * 2  # the position embedding, then attention and MLP for each of 2 blocks
    for block in blocks:
        assert block.connect == "add" and block.shortcut == () and isinstance(block.body[0], Activation)
        assert isinstance(block.body[-1], Attention) or not block.body[-1].act
    stem = [layer for layer in arch.layers[:6] if isinstance(layer, Conv)]
    assert [c.act for c in stem] == [True, True, True, False]
    same_width = create_architecture("sdt", 10, (3, 32, 32), 1.0, dim=16, depth=1, heads=2, mlp_ratio=1)
    assert sum(isinstance(layer, Residual) for layer in same_width.layers) == 1 + 1 + 2  # the code's inner shortcut


def test_the_sdt_cifar_net_has_spikingjellys_parameter_count_less_its_redundant_biases():
    """SpikingJelly 2.0's ``SpikeDrivenTransformer`` in the CIFAR-10 configuration of the paper's code (2-512, 8 heads,
    pooling "0011") holds 10,234,378 parameters, 7,104 of them biases of convolutions that a batch-norm follows (which
    ours leave out): 10,227,274, 10,205,898 of them in convolutions and the classifier."""
    arch = create_architecture("sdt", 10, (3, 32, 32), 1.0)
    assert sum(c.params for c in layer_costs(arch)) == 10_205_898
    net = create_model("sdt", method="stbp", num_classes=10, norm="bn")
    assert sum(p.numel() for p in net.parameters()) == 10_227_274


def test_sdsa_costs_by_hand():
    """C = 16 channels, L = 2 x 2 tokens: 4 C^2 = 1024 weights; MACs 4 C^2 L + 2 C L = 4096 + 128."""
    arch = create_architecture("sdt", 10, (1, 32, 32), 1.0, dim=16, depth=1, heads=4, pooling="1111")
    cost = next(c for c in layer_costs(arch) if c.kind == "sdsa")
    assert (cost.params, cost.macs, cost.fan_in, cost.input_shape) == (1024, 4224, 16, (16, 2, 2))


@pytest.mark.parametrize("args", [{"pooling": "011"}, {"pooling": "0012"}, {"pooling": 11}, {"dim": 20},
                                  {"depth": -1}, {"mlp_ratio": 0}])
def test_bad_sdt_sizes_are_refused_in_one_line(args):
    with pytest.raises(ConfigError, match="sdt"):
        create_architecture("sdt", 10, (3, 32, 32), 1.0, **{"dim": 64, "heads": 4, **args})
    with pytest.raises(ConfigError, match="square"):
        create_architecture("sdt", 10, (3, 32, 16), 1.0, dim=64, heads=4)


def test_qkformer_stages_halve_the_map_and_use_qk_attention_then_ssa():
    """224 -> 56 (stem pool and the first patch embedding) -> 28 -> 14 tokens; Q-K attention in the first two stages,
    SSA in the last; each patch embedding a SEW add residual with a strided 1x1 shortcut."""
    arch = create_architecture("qkformer", 10, (3, 224, 224), 1.0, dim=32, heads=[1, 2, 4], depths=[1, 2, 1])
    attention = [v for v in arch.visits() if isinstance(v.layer, Attention)]
    assert [(v.layer.mixing, v.layer.heads, v.input_shape) for v in attention] == [
        ("qk_token", 1, (8, 56, 56)), ("qk_token", 2, (16, 28, 28)), ("qk_token", 2, (16, 28, 28)),
        ("ssa", 4, (32, 14, 14))]
    embeddings = [layer for layer in arch.layers if isinstance(layer, Residual) and layer.shortcut]
    assert len(embeddings) == 3 and all(e.shortcut[0].stride == 2 and e.connect == "add" for e in embeddings)
    channel = create_architecture("qkformer", 10, (3, 224, 224), 1.0, dim=32, heads=[1, 2, 4], qk="channel")
    assert {v.layer.mixing for v in channel.visits() if isinstance(v.layer, Attention)} == {"qk_channel", "ssa"}


def test_qkformer_10_384_has_spikingjellys_parameter_count_less_its_redundant_biases():
    """SpikingJelly 2.0's ``qkformer_10_384()`` holds 16,472,584 parameters, 17,904 of them biases of convolutions that
    a batch-norm follows (ours leave them out): 16,454,680; the paper gives 16.47 M."""
    net = create_model("qkformer", method="stbp", num_classes=1000, norm="bn")
    assert sum(p.numel() for p in net.parameters()) == 16_454_680
    arch = create_architecture("qkformer", 1000, (3, 224, 224), 1.0)  # heads change the function, not the count:
    heads = [(v.layer.heads, v.input_shape[0]) for v in arch.visits() if isinstance(v.layer, Attention)]
    assert heads == [(6, 96)] + [(6, 192)] * 2 + [(6, 384)] * 7  # the paper's code: 6 heads in every stage


def test_qk_attention_costs_by_hand():
    """The first stage at 32x32: C = 8 channels, L = 8 x 8 tokens: 3 C^2 = 192 weights; MACs 3 C^2 L + 2 C L =
    12,288 + 1,024."""
    arch = create_architecture("qkformer", 10, (3, 32, 32), 1.0, dim=32, heads=[2, 2, 2], depths=[1, 0, 0])
    cost = next(c for c in layer_costs(arch) if c.kind == "qk_token")
    assert (cost.params, cost.macs, cost.input_shape) == (192, 13_312, (8, 8, 8))


@pytest.mark.parametrize("args", [{"heads": [1, 2]}, {"depths": [1, -1, 1]}, {"qk": "both"}, {"dim": 20},
                                  {"heads": [3, 3, 3]}, {"mlp_ratio": 0}])
def test_bad_qkformer_sizes_are_refused_in_one_line(args):
    with pytest.raises(ConfigError, match="qkformer"):
        create_architecture("qkformer", 10, (3, 32, 32), 1.0, **{"dim": 32, "heads": [1, 2, 4], **args})
