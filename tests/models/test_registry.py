"""Model registration (``models.registry``): a bad registration is refused at once, so it cannot break every later
``list_models`` / ``model_table`` of the process."""

import pytest

import deepspike as ds
from deepspike.core.errors import ConfigError
from deepspike.models import registry
from deepspike.models.spec import Flatten, Linear


@pytest.fixture
def fresh_registry(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))  # registrations end with the test


@pytest.mark.parametrize(("name", "shape", "message"), [
    (5, (1, 8, 8), "the name must be a non-empty string"),
    ("", (1, 8, 8), "the name must be a non-empty string"),
    ("m", "abc", "default_input_shape must be positive ints"),
    ("m", (1, 0, 8), "default_input_shape must be positive ints"),
    ("m", (), "default_input_shape must be positive ints"),
])
def test_a_bad_registration_is_refused_and_the_table_still_works(fresh_registry, name, shape, message):
    with pytest.raises(TypeError, match=message):
        ds.register_model(name, shape)
    assert {row["name"] for row in ds.model_table()} >= {"mlp", "lenet"}


def test_a_factory_that_returns_no_layers_is_one_line(fresh_registry):
    @ds.register_model("returns_none", (1, 8, 8))
    def returns_none(num_classes, input_shape, width):
        return None

    @ds.register_model("returns_layers", (1, 8, 8))
    def returns_layers(num_classes, input_shape, width):
        return [Flatten(), Linear(num_classes, act=False)]

    with pytest.raises(ConfigError, match="'returns_none': its factory returned NoneType, not a non-empty tuple"):
        ds.create_architecture("returns_none")
    assert len(ds.create_architecture("returns_layers").layers) == 2
