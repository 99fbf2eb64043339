"""``digits_rows``, ``mnist_rows``, ``fashion_mnist_rows``: each step of a sequence is one row of the static set's
image, exactly; per-step ``(C * W,)``, ``H`` steps, the static set's splits and val part, per-feature statistics."""

from __future__ import annotations

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.data import BatchIterator, load_dataset
from deepspike.data.neuromorphic import EventFrameDataset
from deepspike.data.neuromorphic.static_rows import image_rows
from fakedata import write_dataset


@pytest.fixture(autouse=True)
def _no_shared_data(tmp_path, monkeypatch):
    """Look only in the test's folder (no $DEEPSPIKE_DATA, no ~/.cache/deepspike of the machine)."""
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_image_rows_by_hand():
    """``out[n, t, c * W + w] = x[n, c, t, w]``: two channels of 2 x 3 images."""
    x = torch.arange(2 * 2 * 2 * 3).reshape(2, 2, 2, 3)  # [N=2, C=2, H=2, W=3]
    rows = image_rows(x)
    assert rows.shape == (2, 2, 6)
    assert rows[0, 0].tolist() == [0, 1, 2, 6, 7, 8] and rows[0, 1].tolist() == [3, 4, 5, 9, 10, 11]
    for n in range(2):
        for t in range(2):
            assert torch.equal(rows[n, t], torch.cat([x[n, 0, t], x[n, 1, t]]))


def test_digits_rows_are_the_rows_of_the_images():
    rows, images = load_dataset("digits_rows"), load_dataset("digits")
    assert isinstance(rows.train, EventFrameDataset) and rows.name == "digits_rows"
    assert rows.input_shape == (8,) and rows.train.shape == (8,) and rows.train.timesteps == 8
    assert rows.num_classes == 10 and rows.class_names == images.class_names and rows.val is None
    assert rows.train.x.dtype == torch.float32 and rows.train.x.shape == (len(images.train), 8, 8)
    for got, want in ((rows.train, images.train), (rows.test, images.test)):
        assert torch.equal(got.y, want.y)
        for t in range(8):  # sample step t == image row t, bit for bit
            assert torch.equal(got.x[:, t, :], want.x[:, 0, t, :])
    assert float(rows.train.x.min()) >= 0.0 and float(rows.train.x.max()) == 1.0
    x, y = next(iter(BatchIterator(rows.train, batch_size=5, shuffle=False)))
    assert x.shape == (5, 8, 8) and x.dtype == torch.float32 and torch.equal(x, images.train.x[:5, 0])


def test_per_feature_statistics_over_samples_and_steps():
    """``mean[w]``/``std[w]`` of pixel column ``w`` over every training image and row (float64 sums)."""
    rows, images = load_dataset("digits_rows"), load_dataset("digits")
    columns = images.train.x[:, 0].double().permute(2, 0, 1).reshape(8, -1)  # [W, N * H]
    assert len(rows.mean) == len(rows.std) == 8
    torch.testing.assert_close(torch.tensor(rows.mean, dtype=torch.float64), columns.mean(dim=1))
    torch.testing.assert_close(torch.tensor(rows.std, dtype=torch.float64), columns.std(dim=1, unbiased=False))
    # data.normalize: each batch [B, T, F] standardised per feature (column position)
    batches = BatchIterator(rows.train, batch_size=4, shuffle=False, normalize=(rows.mean, rows.std))
    x, _ = next(iter(batches))
    mean, std = torch.tensor(rows.mean), torch.tensor(rows.std)
    torch.testing.assert_close(x, (rows.train.x[:4] - mean) / std.clamp_min(1e-12))


def test_val_fraction_takes_the_static_sets_val_samples():
    rows = load_dataset("digits_rows", val_fraction=0.2, seed=3)
    images = load_dataset("digits", val_fraction=0.2, seed=3)
    assert len(rows.val) == len(images.val) and len(rows.train) == len(images.train)
    assert torch.equal(rows.val.y, images.val.y) and torch.equal(rows.val.x, image_rows(images.val.x))
    assert torch.equal(rows.train.x, image_rows(images.train.x))
    assert rows.val.shape == (8,) and rows.val.timesteps == 8
    other = load_dataset("digits_rows", val_fraction=0.2, seed=4)
    assert not torch.equal(other.val.x, rows.val.x)


@pytest.mark.parametrize("name, source", [("mnist_rows", "mnist"), ("fashion_mnist_rows", "fashion_mnist"),
                                          ("digits_rows", "digits")])
def test_fake_data_writer_handles_the_rows_sets(tmp_path, name, source):
    """``write_dataset`` writes the static set of a rows set; 28 steps of 28 features for (Fashion-)MNIST."""
    root = write_dataset(name, tmp_path / "data", n=3)
    rows = load_dataset(name, data_dir=root)
    images = load_dataset(source, data_dir=root)
    _, _, h, w = images.train.x.shape
    assert rows.input_shape == (w,) and rows.train.timesteps == h and rows.train.x.shape[1:] == (h, w)
    assert (h, w) == ((8, 8) if source == "digits" else (28, 28))
    assert rows.class_names == images.class_names and len(rows.test) == len(images.test) > 0
    assert torch.equal(rows.train.x, image_rows(images.train.x)) and torch.equal(rows.test.y, images.test.y)
    assert not list(root.rglob("event_frames"))  # nothing is cached: the rows are a reshape of the images


@pytest.mark.parametrize("val_fraction", [0.0, 0.2])
def test_rows_that_would_not_fit_memory_are_one_line(monkeypatch, val_fraction):
    """Before: no memory check. The digits' 1,797 images and labels (264 bytes each, held), the 1,437 training rows
    copied for a validation part (264 bytes each, with their labels) and the float64 statistics chunk (8 x 64 bytes a
    training row) fit a machine of exactly that many bytes, one byte less is refused in one line."""
    from deepspike.data.neuromorphic import static_rows

    need = 1797 * 264 + (1437 * 264 if val_fraction else 0) + 1437 * 8 * 64
    monkeypatch.setattr(static_rows, "physical_memory", lambda: need)
    assert len(load_dataset("digits_rows", val_fraction=val_fraction).train) == round(1437 * (1 - val_fraction))
    monkeypatch.setattr(static_rows, "physical_memory", lambda: need - 1)
    with pytest.raises(ConfigError, match="digits_rows: the 0.0 GiB of images and labels of digits, .* more than") as e:
        load_dataset("digits_rows", val_fraction=val_fraction)
    assert "\n" not in str(e.value)
