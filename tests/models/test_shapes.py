"""Shape rules of single layers and block junctions, by hand."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.models.layer_specs import Concat, Conv, Dropout, Flatten, Linear, Pool, Residual
from deepspike.models.shapes import junction_shape, layer_output_shape


def test_layer_output_shapes_by_hand():
    assert layer_output_shape(Conv(6, 5, stride=2, padding=2), (3, 9, 7)) == (6, 5, 4)  # (9+4-5)//2+1, (7+4-5)//2+1
    assert layer_output_shape(Pool("avg", 3, stride=2, padding=1), (6, 5, 4)) == (6, 3, 2)  # (5+2-3)//2+1, 3//2+1
    assert layer_output_shape(Flatten(), (6, 3, 2)) == (36,)
    assert layer_output_shape(Dropout(0.2), (36,)) == (36,)
    assert layer_output_shape(Linear(7), (36,)) == (7,)
    with pytest.raises(ConfigError, match="Conv needs an image input"):
        layer_output_shape(Conv(2, 1), (36,))
    with pytest.raises(ConfigError, match="unknown layer spec"):  # blocks are the walk's (models.walk)
        layer_output_shape(Residual(body=()), (3, 4, 4))


def test_junction_shapes_by_hand():
    assert junction_shape(Residual(body=()), [(4, 3, 3), (4, 3, 3)]) == (4, 3, 3)
    assert junction_shape(Concat(((), (), ())), [(1, 3, 3), (2, 3, 3), (5, 3, 3)]) == (8, 3, 3)
    with pytest.raises(ConfigError, match="residual branches disagree"):
        junction_shape(Residual(body=()), [(4, 3, 3), (4, 2, 2)])
    with pytest.raises(ConfigError, match="concat branches disagree on spatial size"):
        junction_shape(Concat(((), ())), [(1, 3, 3), (1, 3, 2)])
