"""``methods.init``: He initialisation ``w ~ N(0, kappa / fan_in)`` and its refusals."""

import pytest
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture


@pytest.mark.parametrize("kappa", [1e-80, 1e-300])
def test_an_init_kappa_whose_weights_float32_cannot_hold_is_refused_in_one_line(kappa):
    """sqrt(1e-80 / 64) = 1.25e-41 is subnormal in float32 (1e-300 gives exact zeros): a digits mlp trained 2 epochs
    to 10% test accuracy (chance) without a word."""
    arch = create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8), hidden=[32])
    with pytest.raises(ConfigError, match=rf"^method.init_kappa={kappa!r} draws a layer of fan-in 64 from N\(0, "
                                          r".*below float32's smallest normal 1.175e-38, its weights would be 0"):
        get_method("stbp", {"init_kappa": kappa}).build(arch)
    weights = get_method("stbp", {"init_kappa": 1e-70}).build(arch).body  # std 1.25e-36: normal, drawn
    assert all(m.weight.abs().max() > 0 for m in weights.modules() if isinstance(m, nn.Linear))
