"""Registry, digits (the default data set), seeded splits and channel statistics."""

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.data import (
    DataSplits,
    TensorDataset,
    channel_stats,
    list_datasets,
    load_dataset,
    make_splits,
    register_dataset,
    split_indices,
)
from deepspike.data.registry import declared_shape
from fakedata import write_dataset
from registries import keep_registrations_to_the_test


def test_list_and_unknown_names():
    names = {"digits", "mnist", "fashion_mnist", "cifar10", "svhn", "imagefolder", "caltech"}
    assert names <= set(list_datasets())
    with pytest.raises(ConfigError, match="unknown dataset 'mnsit'; valid: .*digits"):
        load_dataset("mnsit")
    with pytest.raises(ConfigError, match="has no option.*size"):
        load_dataset("digits", size=8)
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)


@pytest.mark.parametrize("name", [["digits"], {"digits": 1}, None, 3])
def test_a_name_that_is_no_text_is_an_unknown_dataset_in_one_line(name):
    """A list or dict name raised 'TypeError: unhashable type'."""
    with pytest.raises(ConfigError, match=r"^unknown dataset .*; valid: .*digits"):
        load_dataset(name)


def test_register_custom_dataset(monkeypatch):
    keep_registrations_to_the_test(monkeypatch)  # the docs tests list every registered data set

    @register_dataset("test_tiny")
    def tiny(data_dir=None, val_fraction=0.0, seed=0, download=False, n=4):
        x = torch.zeros(n, 1, 2, 2)
        ds = TensorDataset(x, torch.arange(n) % 2)
        return make_splits(ds, ds, val_fraction=val_fraction, seed=seed, num_classes=2, class_names="ab")

    assert "test_tiny" in list_datasets()
    assert len(load_dataset("test_tiny", n=6).train) == 6
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset("test_tiny")(lambda **kw: None)


@pytest.mark.parametrize(("name", "args"), [("digits", {}), ("mnist", {}), ("nmnist", {"stride": 2, "cache": False}),
                                            ("shd", {"stride": 3, "timesteps": 4, "cache": False}),
                                            ("digits_events", {"pad": 2, "stride": 3, "timesteps": 2, "cache": False}),
                                            ("mnist_rows", {})])
def test_the_declared_shape_is_the_loaded_one(tmp_path, name, args):
    # what a run builds its model at before reading the data (training.temporal_grad.check_settings_before_data)
    data = load_dataset(name, data_dir=write_dataset(name, tmp_path, n=1), **args)
    assert declared_shape(name, args) == (tuple(data.input_shape), data.num_classes)


@pytest.mark.parametrize(("name", "args"), [("imagefolder", {}), ("mnist", {"size": 8}), ("nmnist", {"stride": 35}),
                                            ("nmnist", {"stride": "2"}), ("digits_events", {"pad": -1}),
                                            ("shd", {"output": "counts"}), ("mnsit", {}), (["mnist"], {})])
def test_no_shape_is_declared_where_only_reading_tells_or_the_loader_refuses(name, args):
    assert declared_shape(name, args) is None


def test_a_custom_dataset_declares_its_shape_from_its_options(monkeypatch):
    keep_registrations_to_the_test(monkeypatch)

    @register_dataset("test_sized", shape=lambda n, size: ((1, size, size), n))
    def sized(data_dir=None, val_fraction=0.0, seed=0, download=False, n=4, size=2):
        raise AssertionError("not read")

    assert declared_shape("test_sized", {"size": 5}) == ((1, 5, 5), 4)
    register_dataset("test_sized")(sized)  # registered again without one: none
    assert declared_shape("test_sized", {}) is None


def test_digits_default_split():
    data = load_dataset("digits")
    assert len(data.train) == 1437 and len(data.test) == 360 and data.val is None
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    # stratified: 1797 digits, about 180 per class, 360 test -> 35..37 of each class
    counts = torch.bincount(data.test.y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    # pixels are v / 16 for v in 0..16
    values = torch.unique(torch.cat([data.train.x.flatten(), data.test.x.flatten()]) * 16)
    assert torch.equal(values, torch.arange(17.0))
    # the test split is fixed: the same images whatever the seed
    other = load_dataset("digits", seed=7, val_fraction=0.2)
    assert torch.equal(other.test.x, data.test.x)
    # and it matches scikit-learn's own raw data
    from sklearn.datasets import load_digits

    raw = load_digits()
    first = torch.as_tensor(raw.images[0] / 16, dtype=torch.float32)  # image 0 stays first of its split
    assert any(torch.equal(first, x[0, 0]) for x in (data.train.x, data.test.x))
    both_y = torch.cat([data.train.y, data.test.y])
    assert torch.bincount(both_y).tolist() == np.bincount(raw.target).tolist()
    both_sum = data.train.x.double().sum() + data.test.x.double().sum()
    assert both_sum.item() == pytest.approx(raw.images.sum() / 16)


def test_digits_validation_split_and_train_statistics():
    a = load_dataset("digits", val_fraction=0.2, seed=1)
    b = load_dataset("digits", val_fraction=0.2, seed=1)
    c = load_dataset("digits", val_fraction=0.2, seed=2)
    assert len(a.train) + len(a.val) == 1437 and abs(len(a.val) - 287) <= 5
    assert torch.equal(a.val.x, b.val.x) and not torch.equal(a.val.x, c.val.x)
    # mean/std come from the training part only (numpy reference, float64)
    x = a.train.x.numpy().astype(np.float64)
    assert a.mean[0] == pytest.approx(x.mean(), rel=1e-9) and a.std[0] == pytest.approx(x.std(), rel=1e-9)
    assert a.mean[0] != pytest.approx(float(a.val.x.mean()), rel=1e-6)


def test_split_indices_stratified_and_seeded():
    labels = torch.tensor([0] * 10 + [1] * 20)
    keep, held = split_indices(labels, 0.2, seed=3)
    assert torch.bincount(labels[held]).tolist() == [2, 4]  # round(0.2 * 10), round(0.2 * 20)
    assert sorted(torch.cat([keep, held]).tolist()) == list(range(30))
    again = split_indices(labels, 0.2, seed=3)
    assert torch.equal(held, again[1])
    assert any(not torch.equal(held, split_indices(labels, 0.2, seed=s)[1]) for s in (4, 5))
    keep, held = split_indices(labels, 0.5, seed=0, stratify=False)
    assert len(held) == 15 and len(keep) == 15
    with pytest.raises(ConfigError):
        split_indices(labels, 1.5, seed=0)


def test_channel_stats_hand_computed():
    x = torch.zeros(2, 2, 1, 2)
    x[0, 0] = torch.tensor([0.0, 1.0])
    x[1, 0] = torch.tensor([0.0, 1.0])  # channel 0: values 0, 1, 0, 1 -> mean 0.5, std 0.5
    x[:, 1] = 0.25  # channel 1: constant -> mean 0.25, std 0
    mean, std = channel_stats(x, chunk=1)  # chunking must not change the result
    assert mean == pytest.approx((0.5, 0.25)) and std == pytest.approx((0.5, 0.0), abs=1e-12)


def test_data_splits_fields():
    x = torch.rand(6, 3, 2, 2)
    ds = TensorDataset(x, torch.tensor([0, 1, 2, 0, 1, 2]))
    s = make_splits(ds, ds, val_fraction=0.0, seed=0, num_classes=3, class_names=["a", "b", "c"])
    assert isinstance(s, DataSplits) and s.input_shape == (3, 2, 2) and s.class_names == ("a", "b", "c")
    assert len(s.mean) == 3 and len(s.std) == 3


@pytest.mark.parametrize("arguments, message", [
    ({"val_fraction": "0.2"}, r"val_fraction must be in \[0, 1\), got '0.2'"),
    ({"val_fraction": True}, r"val_fraction must be in \[0, 1\), got True"),
    ({"val_fraction": 0.2, "seed": "1"}, r"seed must be an integer from 0 to 2\*\*63 - 1, got '1'"),
    ({"seed": 1.5}, r"seed must be an integer from 0 to 2\*\*63 - 1, got 1.5"),
    ({"seed": -1}, r"seed must be an integer from 0 to 2\*\*63 - 1, got -1"),
    ({"download": "no"}, "download must be true or false, got 'no'"),
])
def test_common_arguments_of_the_wrong_kind_are_one_config_error_line(arguments, message):
    """Before: val_fraction="0.2" raised TypeError in a comparison, seed="1" ValueError in mix_seed (and any seed was
    taken unused without a val part), download="no" was true and downloaded; True was a fraction of 1."""
    with pytest.raises(ConfigError, match=message) as e:
        load_dataset("digits", **arguments)
    assert "\n" not in str(e.value)
