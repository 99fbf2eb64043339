"""The batch iterator: seeded per-epoch shuffling, sharding across ranks, augmentation, normalisation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from deepspike.core.errors import ConfigError
from deepspike.core.options import INT64_MAX, is_whole
from deepspike.data.augment import Augment, as_augment
from deepspike.data.augment import normalize as normalize_batch
from deepspike.data.mixing import MixedLabels
from deepspike.data.splits import mix_seed


def _check_arguments(batch_size: object, seed: object, shuffle: object, drop_last: object, num_workers: object) -> None:
    """A one-line ``ConfigError`` unless ``batch_size`` is an integer >= 1, ``seed`` one from 0 to 2**63 - 1 (as
    ``train.seed``), ``num_workers`` one >= 0 and ``shuffle`` / ``drop_last`` true or false: 2.5 was taken as a batch
    of 2, seed 1.7 as 1 and -1 as 2**64 - 1, ``shuffle="no"`` shuffled, and a text batch size was a TypeError."""
    for name, value, ok, rule in (("batch_size", batch_size, is_whole(batch_size, 1), "an integer >= 1"),
                                  ("seed", seed, is_whole(seed, 0, INT64_MAX), "an integer from 0 to 2**63 - 1"),
                                  ("num_workers", num_workers, is_whole(num_workers, 0), "an integer >= 0"),
                                  ("shuffle", shuffle, isinstance(shuffle, bool), "true or false"),
                                  ("drop_last", drop_last, isinstance(drop_last, bool), "true or false")):
        if not ok:
            raise ConfigError(f"{name} must be {rule}, got {value!r}")


class BatchIterator:
    """Iterate ``(x [B, C, H, W] float32, y [B] int64)`` batches of ``dataset`` on ``device``.

    Order: epoch ``e`` uses the permutation ``randperm(N)`` seeded by ``mix_seed(seed, e)`` (identity when
    ``shuffle=False``), so a run resumed at epoch ``e`` (after ``set_epoch(e)``) sees the same batches.
    Batches: consecutive chunks of ``batch_size`` of that order (the last short one is dropped when
    ``drop_last``). ``batch_size`` is the GLOBAL batch: with ``world_size`` ranks, rank ``r`` takes part
    ``r`` of ``torch.tensor_split(chunk, world_size)`` of every chunk, so the ranks together see exactly the
    batches one process would (no sample dropped), which is what makes a data-parallel step equal to a
    single-process step (see ``training.distributed``). In-memory data (``dataset.x``) is gathered with one
    index tensor per batch; streaming data sets go through a ``torch.utils.data.DataLoader`` with
    ``num_workers`` workers and the same order.
    Then per batch: move to ``device``, ``augment(x, generator)`` with a generator seeded by
    ``mix_seed(seed, e, 0, batch, 0xA06)`` (with MixUp / CutMix on, ``augment.mix``: the labels become
    ``data.mixing.MixedLabels``), and ``(x - mean) / std`` when ``normalize=(mean, std)``. In-memory
    batches are augmented whole and then sliced, so every rank applies the single-process draws to its
    part; streaming batches are sliced first and seeded with ``mix_seed(seed, e, rank, batch, 0xA06)``.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        augment=None,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
    ):
        _check_arguments(batch_size, seed, shuffle, drop_last, num_workers)
        if not (is_whole(world_size, 1) and is_whole(rank, 0, world_size - 1)):
            raise ConfigError(f"need integers 0 <= rank < world_size, got rank={rank!r}, world_size={world_size!r}")
        if 0 < len(dataset) < world_size:
            raise ConfigError(f"{len(dataset)} samples cannot be sharded over world_size={world_size} ranks")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.augment = as_augment(augment)
        self.normalize = normalize
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.num_workers = num_workers
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s order (and augmentation draws)."""
        self.epoch = int(epoch)

    def global_batches(self) -> list[torch.Tensor]:
        """The epoch's batches of sample indices, each of up to ``batch_size`` (all ranks together)."""
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        chunks = [c for c in order.split(self.batch_size) if len(c)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        return chunks

    def rank_part(self, chunk: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch (any tensor whose first axis is the batch)."""
        if self.world_size == 1:
            return chunk
        if isinstance(chunk, MixedLabels):
            return chunk.split(self.world_size, self.rank)
        return torch.tensor_split(chunk, self.world_size)[self.rank]

    def indices(self) -> torch.Tensor:
        """This rank's sample indices for the current epoch, in batch order; int64."""
        return torch.cat(
            [self.rank_part(c) for c in self.global_batches()] or [torch.empty(0, dtype=torch.long)]
        )

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _raw(self, chunks: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if hasattr(self.dataset, "x"):
            src = self.dataset.x.device
            for idx in chunks:
                idx = idx.to(src)
                yield self.dataset.x[idx], self.dataset.y[idx]  # [B, C, H, W], [B]
            return
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=[c.tolist() for c in chunks if len(c)],
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        loaded = iter(loader)
        for idx in chunks:  # a rank's empty part of a last batch smaller than world_size: an empty batch, as in memory
            yield next(loaded) if len(idx) else self._empty_batch()

    def _empty_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [0, ...], y [0])`` shaped as the data set's samples (its first sample, collated, cut to none): the
        DataLoader's collation of an empty batch raised ``IndexError``."""
        x, y = torch.utils.data.default_collate([self.dataset[0]])
        return x[:0], y[:0]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        non_blocking = self.device.type == "cuda"
        in_memory = hasattr(self.dataset, "x")
        chunks = self.global_batches()
        if not in_memory:
            chunks = [self.rank_part(c) for c in chunks]
        for b, (x, y) in enumerate(self._raw(chunks)):
            x = x.to(self.device, torch.float32, non_blocking=non_blocking)
            y = y.to(self.device, torch.int64, non_blocking=non_blocking)
            if self.augment is not None and len(x):  # (a rank's empty part of a streamed batch: nothing to draw)
                rank = 0 if in_memory else self.rank
                g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, rank, b, 0xA06))
                x = self.augment(x, g)
                if isinstance(self.augment, Augment):
                    x, y = self.augment.mix(x, y, g)  # labels become MixedLabels when samples are mixed
            if in_memory:
                x, y = self.rank_part(x), self.rank_part(y)
            if self.normalize is not None:
                x = normalize_batch(x, *self.normalize)
            yield x, y
