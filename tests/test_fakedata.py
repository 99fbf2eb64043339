"""The fake-data writers produce files the real loaders accept (so recipe smoke tests exercise real I/O)."""

import pytest

from deepspike.data import load_dataset
from fakedata import write_dataset


@pytest.mark.parametrize(
    "name, shape, options",
    [
        ("mnist", (1, 28, 28), {}),
        ("fashion_mnist", (1, 28, 28), {}),
        ("cifar10", (3, 32, 32), {}),
        ("svhn", (3, 32, 32), {}),
        ("imagefolder", (3, 16, 16), {"size": 16}),
        ("caltech", (1, 20, 30), {"size": [20, 30], "train_per_class": 2}),
    ],
)
def test_written_data_loads(tmp_path, monkeypatch, name, shape, options):
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = write_dataset(name, tmp_path / "data", n=4)
    splits = load_dataset(name, data_dir=root, **options)
    assert tuple(splits.input_shape) == shape
    assert len(splits.train) > 0 and len(splits.test) > 0
    assert float(splits.train.x.min()) >= 0.0 and float(splits.train.x.max()) <= 1.0
