"""BatchIterator: full coverage, seeded (seed, epoch) order, resume, drop_last, sharding, augmentation."""

from types import SimpleNamespace

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.data import BatchIterator, TensorDataset


def dataset(n: int = 10) -> TensorDataset:
    """Sample i is filled with the value i / 100, and its label is i: batches can be traced back."""
    x = (torch.arange(n, dtype=torch.float32) / 100).view(n, 1, 1, 1).expand(n, 2, 3, 3).clone()
    return TensorDataset(x, torch.arange(n))


def labels(it) -> list[list[int]]:
    return [y.tolist() for _, y in it]


def test_one_epoch_covers_everything_once_and_x_matches_y():
    it = BatchIterator(dataset(10), batch_size=4, seed=0)
    assert len(it) == 3
    batches = list(it)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for x, y in batches:
        assert x.shape[1:] == (2, 3, 3) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert torch.allclose(x[:, 0, 0, 0], y.float() / 100)


def test_order_depends_on_seed_and_epoch_only():
    ds = dataset(50)
    a, b = BatchIterator(ds, 8, seed=1), BatchIterator(ds, 8, seed=1)
    assert labels(a) == labels(b)  # same seed and epoch
    assert labels(a) == labels(a)  # iterating again does not advance anything
    first = labels(a)
    a.set_epoch(1)
    assert labels(a) != first
    assert labels(BatchIterator(ds, 8, seed=2)) != first
    # resume: a fresh iterator set to epoch 3 gives what the original gave in epoch 3
    history = []
    for epoch in range(4):
        a.set_epoch(epoch)
        history.append(labels(a))
    resumed = BatchIterator(ds, 8, seed=1)
    resumed.set_epoch(3)
    assert labels(resumed) == history[3]


def test_no_shuffle_and_drop_last():
    it = BatchIterator(dataset(10), 4, shuffle=False)
    assert labels(it) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    it = BatchIterator(dataset(10), 4, shuffle=False, drop_last=True)
    assert len(it) == 2 and labels(it) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(BatchIterator(dataset(8), 4, drop_last=True)) == 2


def test_sharding_splits_every_global_batch():
    ds = dataset(11)
    full = BatchIterator(ds, 4, seed=4)
    full.set_epoch(2)
    global_batches = labels(full)  # [[4 labels], [4 labels], [3 labels]]
    parts = []
    for rank in range(3):
        it = BatchIterator(ds, 4, seed=4, rank=rank, world_size=3)
        it.set_epoch(2)
        assert len(it) == 3  # one local batch per global batch
        parts.append(labels(it))
        assert [v for batch in parts[-1] for v in batch] == it.indices().tolist()
    # torch.tensor_split of 4 into 3 parts: 2, 1, 1; of 3: 1, 1, 1
    assert [len(b) for b in parts[0]] == [2, 2, 1] and [len(b) for b in parts[2]] == [1, 1, 1]
    for i, batch in enumerate(global_batches):
        assert parts[0][i] + parts[1][i] + parts[2][i] == batch  # the ranks together = the global batch
    assert sorted(v for p in parts for b in p for v in b) == list(range(11))  # nothing dropped


def test_sharded_augmentation_equals_single_process():
    ds = TensorDataset(torch.rand(10, 1, 5, 5), torch.arange(10))
    aug = SimpleNamespace(crop_padding=1, hflip=True)
    single = [x for x, _ in BatchIterator(ds, 5, seed=3, augment=aug)]
    halves = [[x for x, _ in BatchIterator(ds, 5, seed=3, augment=aug, rank=r, world_size=2)] for r in (0, 1)]
    for b, x in enumerate(single):
        assert torch.equal(torch.cat([halves[0][b], halves[1][b]]), x)


class Streamed(torch.utils.data.Dataset):
    """``dataset(n)``'s samples one by one (no ``x`` tensor): batches go through a DataLoader."""

    def __init__(self, n: int) -> None:
        self.inner = dataset(n)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        return self.inner.x[i], int(self.inner.y[i])


@pytest.mark.parametrize("streamed", [False, True])
def test_a_rank_whose_part_of_the_last_batch_is_empty_gets_an_empty_batch(streamed):
    """9 samples in batches of 4 over 2 ranks: the last global batch holds 1 sample, so rank 1's part is empty. In
    memory it was an empty batch; streamed, the DataLoader's collation of no samples raised IndexError on rank 1
    (a traceback at the end of every epoch's last step under torchrun). Both now give ``[0, 2, 3, 3]`` / ``[0]``."""
    ds = Streamed(9) if streamed else dataset(9)
    aug = SimpleNamespace(crop_padding=1, hflip=True)
    parts = [list(BatchIterator(ds, 4, seed=1, augment=aug, rank=r, world_size=2)) for r in (0, 1)]
    assert [len(y) for _, y in parts[0]] == [2, 2, 1] and [len(y) for _, y in parts[1]] == [2, 2, 0]
    x, y = parts[1][-1]
    assert x.shape == (0, 2, 3, 3) and x.dtype == torch.float32 and y.shape == (0,) and y.dtype == torch.int64
    assert sorted(v for p in parts for _, y in p for v in y.tolist()) == list(range(9))


def test_augmentation_is_seeded_by_seed_epoch_and_batch():
    ds = TensorDataset(torch.rand(32, 3, 6, 6) + 0.1, torch.arange(32))
    aug = SimpleNamespace(crop_padding=2, hflip=True)  # what the recipe's AugmentConfig looks like

    def xs(seed, epoch):
        it = BatchIterator(ds, 8, seed=seed, augment=aug)
        it.set_epoch(epoch)
        return [x for x, _ in it]

    a, b = xs(0, 0), xs(0, 0)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, xs(0, 1)))
    assert any((x == 0).any() for x in a)  # some zero padding shows up
    plain = [x for x, _ in BatchIterator(ds, 8, seed=0)]
    assert not all(torch.equal(p, q) for p, q in zip(a, plain))


def test_normalize_and_device():
    ds = dataset(4)
    it = BatchIterator(ds, 4, shuffle=False, normalize=((0.01, 0.0), (0.01, 1.0)), device="cpu")
    x, y = next(iter(it))
    # sample i holds i/100: channel 0 -> (i/100 - 0.01)/0.01 = i - 1; channel 1 -> i/100
    assert torch.allclose(x[:, 0, 0, 0], torch.tensor([-1.0, 0.0, 1.0, 2.0]))
    assert torch.allclose(x[:, 1, 2, 2], torch.tensor([0.0, 0.01, 0.02, 0.03]))
    assert x.device == torch.device("cpu") and y.device == torch.device("cpu")


@pytest.mark.parametrize("kw, message", [
    ({"batch_size": 2.5}, "batch_size must be an integer >= 1, got 2.5"),  # was a batch of 2
    ({"batch_size": "3"}, "batch_size must be an integer >= 1, got '3'"),  # was a TypeError
    ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),  # was a batch of 1
    ({"seed": 1.7}, "seed must be an integer from 0 to 2\\*\\*63 - 1, got 1.7"),  # was seed 1
    ({"seed": -1}, "seed must be an integer from 0 to 2\\*\\*63 - 1, got -1"),  # was seed 2**64 - 1
    ({"seed": "a"}, "seed must be an integer from 0 to 2\\*\\*63 - 1, got 'a'"),  # was a ValueError
    ({"shuffle": "no"}, "shuffle must be true or false, got 'no'"),  # shuffled
    ({"drop_last": 1}, "drop_last must be true or false, got 1"),
    ({"num_workers": -1}, "num_workers must be an integer >= 0, got -1"),
    ({"world_size": 2.5}, "need integers 0 <= rank < world_size, got rank=0, world_size=2.5"),  # a TypeError
    ({"rank": 0.0, "world_size": 2}, "need integers 0 <= rank < world_size, got rank=0.0, world_size=2"),
])
def test_arguments_of_the_wrong_kind_are_one_config_error_line(kw, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        BatchIterator(dataset(10), **{"batch_size": 4, **kw})


def test_bad_arguments():
    with pytest.raises(ConfigError, match="batch_size"):
        BatchIterator(dataset(), 0)
    with pytest.raises(ConfigError, match="rank"):
        BatchIterator(dataset(), 2, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="world_size"):
        BatchIterator(dataset(3), 2, world_size=4)
    empty = BatchIterator(TensorDataset(torch.zeros(0, 1, 2, 2), torch.zeros(0)), 4)
    assert len(empty) == 0 and list(empty) == []
