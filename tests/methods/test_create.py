"""``create_model``: a registered architecture built as a method's network, its input shape checked first."""

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods.create import create_model


@pytest.mark.parametrize("shape", [784, "784", (), (0, 8)])
def test_an_input_shape_that_is_no_list_of_sizes_is_one_line(shape):
    """784 where (784,) was meant was a TypeError from tuple(784) (before the architecture's own check)."""
    with pytest.raises(ConfigError, match="^model 'mlp': input shape must be whole numbers from 1 to"):
        create_model("mlp", method="stbp", input_shape=shape)


def test_a_list_input_shape_builds_the_net():
    net = create_model("mlp", method="ann", input_shape=[64], model_args={"hidden": [8]})
    assert net(torch.rand(2, 64)).shape == (2, 10)


@pytest.mark.parametrize("key, value", [("width", 2.0), ("num_classes", 3), ("input_shape", (64,)), ("name", "x")])
def test_a_core_argument_in_model_args_is_one_line(key, value):
    """``model_args={"width": 2}`` beside the width of its own was a TypeError ('got multiple values for keyword
    argument 'width'') before the registry's refusal was reached."""
    with pytest.raises(ConfigError, match=f"^model_args.{key} is not a model option: "):
        create_model("mlp", method="ann", model_args={key: value})


@pytest.mark.parametrize("args", [[1], "hidden=[8]", 5])
def test_model_args_that_are_no_dict_are_one_line(args):
    """A list was Python's TypeError "argument after ** must be a mapping, not list"."""
    with pytest.raises(ConfigError, match=r"^model_args must be a dict of the model's options, e\.g\. .*, got "):
        create_model("mlp", model_args=args)
