"""Method registration (``methods.registry``): only a ``Method`` subclass with a name and an ``Options`` dataclass is
taken, so a bad one cannot break every later ``list_methods`` / ``method_table``; converted nets are not trained."""

import pytest

import deepspike as ds
from deepspike.core.errors import ConfigError
from deepspike.methods import check_trainable
from registries import keep_registrations_to_the_test


@pytest.fixture
def fresh_registry(monkeypatch):
    keep_registrations_to_the_test(monkeypatch)


class NotAMethod:
    name = "not_a_method"


class NoOptions(ds.Method):
    name = "no_options"


@pytest.mark.parametrize(("cls", "message"), [
    (NotAMethod, "takes a subclass of deepspike.methods.Method"),
    (3, "takes a subclass of deepspike.methods.Method"),
    (NoOptions, "needs a string `name` and a dataclass `Options`"),
])
def test_a_bad_method_is_refused_and_the_table_still_works(fresh_registry, cls, message):
    with pytest.raises(TypeError, match=message):
        ds.register_method(cls)
    assert {row["name"] for row in ds.method_table()} >= {"stbp", "ann"}


def test_only_the_converted_method_is_not_trained():
    for row in ds.method_table():
        if row["name"] == "converted":
            with pytest.raises(ConfigError, match="made by `deepspike convert ANN_RUN`"):
                check_trainable(row["name"])
        else:
            check_trainable(row["name"])
