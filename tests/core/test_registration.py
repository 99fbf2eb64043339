"""Registering a name twice: the same definition run again replaces the entry, another one is refused, for
models, methods and data sets alike."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch

import deepspike as ds
from deepspike.core.errors import ConfigError
from deepspike.data.registry import load_dataset, register_dataset
from deepspike.data.splits import make_splits
from deepspike.data.tensor_dataset import TensorDataset
from deepspike.models.spec import Flatten, Linear
from registries import keep_registrations_to_the_test


@pytest.fixture(autouse=True)
def fresh_registries(monkeypatch):
    keep_registrations_to_the_test(monkeypatch)


def _define_model(scale: int):
    """Runs the same ``def`` each call, as a notebook cell run twice does."""

    def twice_model(num_classes, input_shape, width):
        return (Flatten(), Linear(scale), Linear(num_classes, act=False))

    return twice_model


def _define_method():
    @dataclass
    class Options:
        timesteps: int = 1

    class TwiceMethod(ds.Method):
        name = "test_twice_method"

        def build(self, arch):
            return torch.nn.Identity()

        def loss(self, output, target):
            return output.sum()

    TwiceMethod.Options = Options
    return TwiceMethod


def test_the_same_definition_run_again_replaces_its_entry():
    ds.register_model("test_twice_model", (1, 4, 4))(_define_model(3))
    ds.register_model("test_twice_model", (1, 4, 4))(_define_model(5))  # the cell run again, edited
    assert [m.out_features for m in ds.create_model("test_twice_model", num_classes=2).modules()
            if isinstance(m, torch.nn.Linear)] == [5, 2]
    first, second = _define_method(), _define_method()
    ds.register_method(first)
    ds.register_method(second)
    assert type(ds.get_method("test_twice_method")) is second


def test_another_definition_under_a_taken_name_is_refused():
    def other_model(num_classes, input_shape, width):
        return (Flatten(), Linear(num_classes, act=False))

    with pytest.raises(ConfigError, match=r"^model 'mlp' is already registered \(by deepspike\.models\."):
        ds.register_model("mlp", (1, 28, 28))(other_model)
    with pytest.raises(ConfigError, match=r"^method 'stbp' is already registered \(by deepspike\.methods\."):
        ds.register_method(type("Stbp", (_define_method(),), {"name": "stbp"}))
    with pytest.raises(ConfigError, match=r"^dataset 'digits' is already registered \(by deepspike\.data\."):
        register_dataset("digits")(lambda data_dir, val_fraction, seed, download: None)
    assert sum(p.numel() for p in ds.create_model("mlp").parameters()) == 317_600  # the built-in entry is kept


def test_a_loader_must_take_the_common_arguments_and_return_splits():
    with pytest.raises(TypeError, match=r"the loader must take data_dir, val_fraction, seed, download; "
                                        r"no_seed lacks seed, download"):
        @register_dataset("test_no_seed")
        def no_seed(data_dir, val_fraction):
            return None

    with pytest.raises(TypeError, match=r"the loader must take .*; functools.partial\(.*\) lacks seed, download"):
        register_dataset("test_partial")(functools.partial(lambda data_dir, val_fraction, n: None, n=3))

    @register_dataset("test_returns_a_tuple")
    def returns_a_tuple(**common):
        x = TensorDataset(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long))
        return x, x

    with pytest.raises(ConfigError, match="^dataset 'test_returns_a_tuple': its loader returned a tuple, not "
                                          "DataSplits"):
        load_dataset("test_returns_a_tuple")

    @register_dataset("test_returns_splits")
    def returns_splits(data_dir, val_fraction, seed, download):
        x = TensorDataset(torch.zeros(4, 1, 2, 2), torch.arange(4) % 2)
        return make_splits(x, x, val_fraction=val_fraction, seed=seed, num_classes=2, class_names="ab")

    assert len(load_dataset("test_returns_splits").train) == 4
