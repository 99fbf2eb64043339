"""Checks at load time (issue 19, items 9 and 12): an empty split, or test images of another shape than the
training images, is a one-line ``DataCorruptError`` when the data set is loaded, not a NaN or a shape error
at evaluation. Exercised with MNIST IDX files written here."""

import numpy as np
import pytest
import torch

from deepspike.cli import main
from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.data import (
    BatchIterator,
    TensorDataset,
    channel_stats,
    load_dataset,
    make_splits,
    mix_seed,
    mnist,
    normalize,
    split_indices,
)
from deepspike.data import splits as splits_module
from deepspike.data.splits import axis_stats, partition_rows, warn_missing_classes
from fakedata import write_idx


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real data leaks in: fake HOME, no $DEEPSPIKE_DATA, no Debian folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_DIR", tmp_path / "debian-fashion")


def write_mnist(root, n_train=20, n_test=10, train_side=28, test_side=28):
    rng = np.random.default_rng(0)
    for split, n, side in (("train", n_train, train_side), ("t10k", n_test, test_side)):
        write_idx(root / "mnist" / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side)))
        write_idx(root / "mnist" / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_idx_split_is_an_error_at_load_time(tmp_path, split):
    sizes = {"n_train": 0} if split == "train" else {"n_test": 0}
    with pytest.raises(DataCorruptError, match=f"mnist: the {'training' if split == 'train' else 'test'} split "
                                               "holds no samples"):
        load_dataset("mnist", data_dir=write_mnist(tmp_path, **sizes))


def test_8x8_test_samples_for_28x28_training_samples():
    train, test = TensorDataset(torch.zeros(2, 1, 28, 28), torch.tensor([0, 1])), TensorDataset(
        torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(DataCorruptError, match=r"mnist: test samples have shape \[1, 8, 8\] but training samples "
                                               r"\[1, 28, 28\]"):
        splits_module.check_splits(train, test, "mnist")


@pytest.mark.parametrize("sides", [(28, 8), (8, 8)])
def test_mnist_idx_files_of_other_than_28x28_images_are_refused(tmp_path, sides):
    """8x8 IDX files (both splits) loaded as "mnist" [N, 1, 8, 8], though MNIST's images are 28x28."""
    train_side, test_side = sides
    bad = "train" if train_side == 8 else "t10k"
    with pytest.raises(DataCorruptError, match=rf"^mnist: \S*{bad}-images-idx3-ubyte holds 8x8 images; mnist images "
                                               r"are 28x28 \(are these another data set's IDX files\?\)$"):
        load_dataset("mnist", data_dir=write_mnist(tmp_path, train_side=train_side, test_side=test_side))


def test_train_with_an_empty_test_set_writes_nothing(tmp_path, capsys):
    """The issue's reproduction: it trained and wrote a bare NaN into summary.json."""
    data = write_mnist(tmp_path / "data", n_test=0)
    out = tmp_path / "run"
    argv = ["train", "data.name=mnist", f"data.data_dir={data}", "method.name=ann", "model.name=mlp",
            "model.args.hidden=[4]", "train.epochs=1", "train.progress=false", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspike: error: mnist: the test split holds no samples") and err.count("\n") == 1
    assert not out.exists()


def test_a_validation_split_must_hold_samples():
    ds = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ConfigError, match="val_fraction 0.1 of 4 training samples leaves 4 for training and 0 for "
                                          "validation"):
        make_splits(ds, ds, val_fraction=0.1, seed=0, num_classes=4, class_names="abcd", name="tiny")
    pairs = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 0, 1, 1]))
    splits = make_splits(pairs, pairs, val_fraction=0.5, seed=0, num_classes=2, class_names="ab")
    assert len(splits.train) == len(splits.val) == 2


@pytest.mark.parametrize("fraction, counts, label", [(0.6, (10, 1, 3), 1), (0.75, (10, 4, 2), 2),
                                                     (0.95, (30, 20, 5), 2)])
def test_a_split_that_would_hold_out_a_whole_class_is_one_config_error_line(fraction, counts, label):
    """Before, the one sample of class 1 at val_fraction 0.6 went to validation: trained on classes 0 and 2 only."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    ds = TensorDataset(torch.zeros(len(labels), 1, 2, 2), labels)
    match = (rf"^split fraction {fraction} holds out all {counts[label]} sample\(s\) of class {label}, leaving none "
             "of it for training; lower the fraction$")
    with pytest.raises(ConfigError, match=match):
        make_splits(ds, ds, val_fraction=fraction, seed=0, num_classes=3, class_names="abc")
    splits = make_splits(ds, ds, val_fraction=0.5, seed=0, num_classes=3, class_names="abc")  # round(0.5) = 0
    assert sorted(set(splits.train.y.tolist())) == [0, 1, 2]


def test_an_empty_test_split_asked_for_is_allowed():
    ds = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 2, 3]))
    empty = TensorDataset(torch.zeros(0, 1, 2, 2), torch.zeros(0, dtype=torch.int64))
    assert len(make_splits(ds, empty, val_fraction=0.0, seed=0, num_classes=4, class_names="abcd",
                           empty_test_ok=True).test) == 0
    with pytest.raises(DataCorruptError, match="the test split holds no samples"):
        make_splits(ds, empty, val_fraction=0.0, seed=0, num_classes=4, class_names="abcd")


@pytest.mark.parametrize(("labels", "split", "low", "high"), [([0, 1, 2, 1], "training", 0, 2),
                                                              ([0, 1, -1, 1], "test", -1, 1)])
def test_labels_outside_the_classes_are_an_error_at_load_time(labels, split, low, high):
    """A label of 2 with two classes failed inside cross_entropy during the first epoch ("Target 2 is out of
    bounds")."""
    good = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))
    bad = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor(labels))
    train, test = (bad, good) if split == "training" else (good, bad)
    with pytest.raises(DataCorruptError) as e:
        make_splits(train, test, val_fraction=0.0, seed=0, num_classes=2, class_names="ab", name="mine")
    assert str(e.value) == f"mine: the {split} labels run from {low} to {high}; with 2 classes they must be 0 to 1"
    assert make_splits(good, good, val_fraction=0.0, seed=0, num_classes=2, class_names="ab").num_classes == 2


class _FloatLabels:
    """A data set of the user's own whose labels are floats (one NaN)."""

    def __init__(self, y):
        self.x, self.y, self.shape = torch.zeros(len(y), 1, 2, 2), torch.tensor(y), (1, 2, 2)

    def __len__(self):
        return len(self.y)


def test_labels_that_are_not_whole_numbers_are_named_so():
    """int(nan) is the smallest int64: the range message said 'labels run from -9223372036854775808'."""
    good = TensorDataset(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]))
    with pytest.raises(DataCorruptError, match="^mine: the training labels are not all whole numbers"):
        make_splits(_FloatLabels([0.0, float("nan")]), good, val_fraction=0.0, seed=0, num_classes=2,
                    class_names="ab", name="mine", stats=lambda d: ((0.0,), (1.0,)))


def test_seeds_that_differ_above_32_bits_give_other_splits_and_orders():
    """``train.seed`` takes 0 .. 2**63 - 1, but ``mix_seed`` kept only the low 32 bits of each part: seeds 0 and
    2**32 gave the same validation split, batch order and augmentation draws. Parts below 2**32 keep their old
    seeds (the reference: numpy's SeedSequence of the parts as they are)."""
    state = np.random.SeedSequence([7, 3]).generate_state(2, dtype=np.uint32)
    assert mix_seed(7, 3) == int(state[0]) << 31 ^ int(state[1])
    assert len({mix_seed(s, 3) for s in (0, 2**32, 2**33, 2**63 - 1)}) == 4
    labels = torch.arange(200) % 2
    assert not torch.equal(split_indices(labels, 0.5, 0)[1], split_indices(labels, 0.5, 2**32)[1])
    data = TensorDataset(torch.zeros(64, 1, 1, 1), torch.zeros(64, dtype=torch.int64))
    orders = [BatchIterator(data, 8, seed=s).indices() for s in (0, 2**32)]
    assert not torch.equal(*orders)


@pytest.mark.parametrize("value, n", [(0.33008623123168945, 10909), (0.9005606174468994, 22146)])
def test_a_constant_channel_has_std_exactly_0_and_is_only_centred(value, n):
    """E[x^2] - mean^2 over chunks left round-off: std 3.7e-9 and 1.5e-8 for these constant channels, so normalize
    scaled a test value 0.1 away from the constant by ~1e7 instead of centring it."""
    x = torch.rand(n, 2, 3, 3, generator=torch.Generator().manual_seed(n))
    x[:, 1] = value
    mean, std = channel_stats(x, chunk=1000)
    reference = x.double().transpose(0, 1).reshape(2, -1)  # [C, N * H * W]
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), reference.mean(dim=1))
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), reference.std(dim=1, unbiased=False))
    assert std[1] == 0.0 and mean[1] == float(torch.tensor(value))
    out = normalize(torch.full((1, 2, 1, 1), value + 0.1), mean, std)
    assert abs(float(out[0, 1]) - 0.1) < 1e-6


def test_partition_rows_reorders_in_place_as_the_two_copies_would():
    """``x[:n] == old x[first]`` and ``x[n:] == old x[second]`` (the copies that held twice the rows), in place."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (23, 3, 2), generator=g, dtype=torch.uint8)
    held = torch.randperm(23, generator=g)[:7].sort().values
    mask = torch.ones(23, dtype=torch.bool)
    mask[held] = False
    keep = torch.nonzero(mask).flatten()
    expected = torch.cat([x[keep], x[held]])
    pointer = x.data_ptr()
    assert partition_rows(x, keep, held) == 16
    assert torch.equal(x, expected) and x.data_ptr() == pointer


def test_axis_stats_holds_one_float64_chunk_at_a_time(monkeypatch):
    """The loop's next float64 chunk was made while the last one was still bound to its variable: two chunks alive at
    once (2880 frames of 10 x 2 x 34 x 34: peak RSS growth 256 MiB, two of the 128 MiB chunks). Now one, of at most
    stats_bytes (what the event loaders' memory checks count for it): 2 samples of 96 values, 1,536 bytes."""
    import weakref

    monkeypatch.setattr(splits_module, "STATS_CHUNK_VALUES", 200, raising=False)
    chunks, overlaps = [], []
    original = torch.Tensor.to

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if out.dtype == torch.float64 and out.numel() > 1:
            overlaps.append(sum(ref() is not None for ref in chunks))
            chunks.append(weakref.ref(out))
            sizes.append(out.nbytes)
        return out

    sizes = []
    monkeypatch.setattr(torch.Tensor, "to", spy)
    x = torch.randint(0, 255, (50, 3, 2, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    axis_stats(x, 2, 2048)
    bound = splits_module.stats_bytes(96, 50, 2048)
    monkeypatch.undo()
    assert len(chunks) > 2 and max(overlaps) == 0
    assert max(sizes) == bound == 1536


def _held_rows(n: int, held: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.ones(n, dtype=torch.bool)
    mask[held] = False
    return torch.nonzero(mask).flatten(), held


@pytest.mark.parametrize("path", ["cycles", "buffered"])
@pytest.mark.parametrize("case", ["random", "none held", "all held", "held first", "held last", "labels", "bool"])
def test_partition_rows_holds_a_bounded_copy(case, path, monkeypatch):
    """partition_rows copied every row of ``second`` (a held-out test split: 0.1 of the frames) beside ``x``, which no
    memory check counted, and moved the others 1024 rows at a time; here 100 of 300 rows of 8 values in one copy.
    The cycle walk (rows over PARTITION_ROW_BYTES) holds no more than one row; the buffered path (here a buffer of
    100 rows and chunks of 7) no more than the rows ``second`` if they fit it, and one chunk; all held (300 rows,
    more than the buffer) takes the cycle walk. The rows are those of the two copies, in place."""
    g = torch.Generator().manual_seed(1)
    held = {"none held": torch.zeros(0, dtype=torch.int64), "all held": torch.arange(300),
            "held first": torch.arange(100), "held last": torch.arange(200, 300)}.get(case)
    held = torch.randperm(300, generator=g)[:100].sort().values if held is None else held
    first, second = _held_rows(300, held)
    x = torch.randint(0, 255, (300,) if case == "labels" else (300, 2, 4), generator=g, dtype=torch.int64)
    x = x > 127 if case == "bool" else x
    expected, pointer, row = torch.cat([x[first], x[second]]), x.data_ptr(), x[0].nbytes
    buffered = path == "buffered" and case != "all held"
    monkeypatch.setattr(splits_module, "PARTITION_ROW_BYTES", row if path == "buffered" else row - 1)
    monkeypatch.setattr(splits_module, "PARTITION_BUFFER_BYTES", 100 * row)
    monkeypatch.setattr(splits_module, "PARTITION_CHUNK_BYTES", 7 * row)
    copies = []
    getitem, index_select, new_empty = torch.Tensor.__getitem__, torch.index_select, torch.Tensor.new_empty

    def spy(self, index):
        out = getitem(self, index)
        if out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr() and self is x:
            copies.append(out.nbytes)
        return out

    def spy_select(*args, **kwargs):
        out = index_select(*args, **kwargs)
        copies.append(0 if "out" in kwargs else out.nbytes)
        return out

    def spy_empty(self, *args, **kwargs):
        out = new_empty(self, *args, **kwargs)
        copies.append(out.nbytes)
        return out

    monkeypatch.setattr(torch.Tensor, "__getitem__", spy)
    monkeypatch.setattr(torch, "index_select", spy_select)
    monkeypatch.setattr(torch.Tensor, "new_empty", spy_empty)
    n = partition_rows(x, first, second)
    bound = splits_module.partition_bytes(row, len(x))  # what the memory checks count for it
    monkeypatch.undo()
    assert n == len(first) and torch.equal(x, expected) and x.data_ptr() == pointer
    assert max(copies, default=0) <= (max(7, len(second)) * row if buffered else row)
    assert sum(copies) <= bound == (107 * row if path == "buffered" else row)


def test_partition_rows_moves_small_rows_without_a_python_step_each(monkeypatch):
    """The cycle walk took one Python step a row: 60,000 labels (0.1 held) took 144 ms against 1 ms for a gather, and
    60000 frames of 2 x 34 x 34 uint8 181 ms against 121 for the copies. Small rows now move through a buffer, a few
    vectorized copies (process_time, one thread, best of 5: under 1 ms and 36 ms), in the order of the copies."""
    labels = torch.randint(0, 10, (60000,), generator=torch.Generator().manual_seed(0))
    keep, held = split_indices(labels, 0.1, 0)
    x, expected = labels.clone(), torch.cat([labels[keep], labels[held]])
    writes = []
    setitem = torch.Tensor.__setitem__
    monkeypatch.setattr(torch.Tensor, "__setitem__", lambda self, index, value: writes.append(1) or setitem(
        self, index, value))
    assert partition_rows(x, keep, held) == len(keep)
    monkeypatch.undo()
    assert torch.equal(x, expected) and len(writes) <= 2
    assert partition_rows(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)) == 0


def test_axis_stats_converts_at_most_a_bounded_number_of_values_at_a_time(monkeypatch):
    """A chunk was ``chunk`` samples whatever their size: 2048 event frames of 16 x 2 x 128 x 128 made an 8 GiB float64
    copy, and its shift and square beside it (2880 frames of 10 x 2 x 34 x 34, 64 MiB, raised the peak RSS by 727 MiB,
    now 261). Now a chunk holds at most ``STATS_CHUNK_VALUES`` values, and the statistics stay those of the
    float64 reference."""
    monkeypatch.setattr(splits_module, "STATS_CHUNK_VALUES", 200, raising=False)
    widest = []
    for name in ("to", "double"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, **kwargs):
            out = _original(self, *args, **kwargs)
            if out.dtype == torch.float64:
                widest.append(out.numel())
            return out

        monkeypatch.setattr(torch.Tensor, name, spy)
    x = torch.randint(0, 255, (50, 3, 2, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    mean, std = axis_stats(x, 2, 2048)
    monkeypatch.undo()
    assert max(widest) <= 200
    ref = x.double().transpose(0, 2).reshape(2, -1)
    np.testing.assert_allclose(mean, ref.mean(1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(std, ref.std(1, unbiased=False).numpy(), rtol=1e-12)


def test_a_missing_class_is_warned_of_by_torchruns_first_process_only(monkeypatch, capsys):
    """Every process of torchrun reads the data: its second printed the warning again."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    warn_missing_classes([0, 0, 2], ["a", "b", "c"], "t: the test split")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    warn_missing_classes([0, 0, 2], ["a", "b", "c"], "t: the test split")
    assert capsys.readouterr().err == "deepspike: warning: t: the test split holds no sample of 1 of its 3 classes: b\n"
