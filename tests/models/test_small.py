"""Small registered nets (``models.small``): lee2020's LeNet against the layers of lee2020's MNIST code."""

from pathlib import Path

import pytest
import torch
from torch import nn

from deepspike.config.load import load_config
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models.registry import create_architecture

RECIPES = Path(__file__).resolve().parents[2] / "configs"


def _weights(net: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def test_lenet_with_padding_two_has_the_layers_of_lee2020s_mnist_code():
    """lee2020's MNIST code: ``Conv2d(1, 20, 5, padding=2)``, ``AvgPool2d(2)``, ``Conv2d(20, 50, 5, padding=2)``,
    ``AvgPool2d(2)``, ``Linear(50 * 7 * 7, 200)``, ``Linear(200, 10)``, all bias-free. lenet had no padding: its FC
    layer took 800 inputs (50 * 4 * 4) where the code's takes 2450."""
    code = nn.Sequential(nn.Conv2d(1, 20, 5, padding=2, bias=False), nn.AvgPool2d(2),
                         nn.Conv2d(20, 50, 5, padding=2, bias=False), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(50 * 7 * 7, 200, bias=False), nn.Linear(200, 10, bias=False))
    net = get_method("spikebp", {"timesteps": 2}).build(create_architecture("lenet", 10, padding=2))
    assert _weights(net) == _weights(code) == [(20, 1, 5, 5), (50, 20, 5, 5), (200, 2450), (10, 200)]
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_lenet_without_padding_keeps_its_unpadded_layout():
    net = get_method("spikebp", {"timesteps": 2}).build(create_architecture("lenet", 10))
    assert _weights(net) == [(20, 1, 5, 5), (50, 20, 5, 5), (200, 800), (10, 200)]


@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
def test_a_lenet_padding_that_is_no_whole_number_from_zero_is_a_one_line_config_error(value):
    with pytest.raises(ConfigError, match=r"^model 'lenet': bad value .* for model.args.padding: [^\n]*$"):
        create_architecture("lenet", 10, padding=value)


def test_the_mnist_lenet_recipe_pads_as_lee2020s_mnist_code():
    config = load_config(RECIPES / "spikebp_mnist_lenet.yaml")
    assert config.model.name == "lenet" and dict(config.model.args) == {"padding": 2}
