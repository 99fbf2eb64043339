"""The result of loading a data set (:class:`DataSplits`), the seeded validation split, channel statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from deepspike.core.errors import ConfigError, DataCorruptError
from deepspike.core.messages import warn
from deepspike.core.options import INT64_MAX, is_whole
from deepspike.data.paths import one_line
from deepspike.data.tensor_dataset import check_whole_labels


@dataclass
class DataSplits:
    """Train / validation / test data and what a model needs to know about it.

    ``train``, ``val`` (None when ``val_fraction == 0``) and ``test`` are :class:`TensorDataset` (``.x``
    float32 ``[N, C, H, W]`` in [0, 1], ``.y`` int64 ``[N]``) or streaming image-folder data sets.
    ``mean`` and ``std`` are per channel, computed on ``train`` after the validation part was taken out.
    """

    train: object
    val: object | None
    test: object
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    name: str = ""

    def steps_per_sample(self) -> int | None:
        """``T'`` when each sample holds a time axis before its per-step ``input_shape`` (sequences ``[T', F]``,
        event frames ``[T', C, H, W]``), else None (images; also data sets that do not hold their samples as one
        tensor ``.x``, the streaming image folders)."""
        x = getattr(self.train if self.train is not None else self.test, "x", None)
        if not isinstance(x, torch.Tensor) or x.dim() != len(self.input_shape) + 2:
            return None
        return int(x.shape[1])


def mix_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, e.g. ``(seed, epoch, rank, batch)`` (numpy SeedSequence).

    Each part counts modulo 2**64: its low 32-bit words first, then, only where some part is 2**32 or more, all
    the high words (so the seeds of parts below 2**32 are those of earlier versions, and seeds 0 and 2**32 no
    longer give the same data order and validation split)."""
    words = [int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]
    high = [w >> 32 for w in words]
    entropy = [w & 0xFFFFFFFF for w in words] + (high if any(high) else [])
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def warn_missing_classes(labels: Sequence[int], class_names: Sequence[str], what: str,
                         among: Sequence[int] | None = None) -> None:
    """A one-line warning on stderr naming the classes (``class_names[c]``; of ``among``, by default all) of which
    ``labels`` (ints 0 .. ``len(class_names) - 1``) hold no sample: ``what`` (e.g. "nmnist: the Test split") has none
    of them, so their per-class accuracy is not measured and the overall accuracy is of the other classes."""
    missing = sorted(set(range(len(class_names)) if among is None else among) - set(labels))
    if missing:
        names = ", ".join(str(class_names[c]) for c in missing)
        warn(f"{what} holds no sample of {len(missing)} of its {len(class_names)} classes: {names}")


def check_split_seed(split_seed: object) -> None:
    """A one-line ``ConfigError`` unless ``data.args.split_seed`` (the seed of a fixed train/test split) is an integer
    from 0 to 2**63 - 1, as ``train.seed`` is (a string crashed in :func:`mix_seed`, 1.5 was taken as 1)."""
    if not is_whole(split_seed, 0, INT64_MAX):
        raise ConfigError(f"data.args.split_seed must be an integer from 0 to 2**63 - 1, got {split_seed!r}")


def split_indices(labels: torch.Tensor, fraction: float, seed: int,
                  stratify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of ``range(N)`` into ``(keep, held_out)`` index tensors (both sorted ascending).

    ``labels`` int64 ``[N]``. Stratified: from each class ``c`` with ``n_c`` samples,
    ``round(fraction * n_c)`` go to ``held_out``; otherwise ``round(fraction * N)`` overall.
    Which ones depends only on ``seed``. Stratified, a class all of whose samples would be held out (e.g. one sample
    and a fraction above 0.5) is a one-line ``ConfigError``: ``keep`` (the training side) would lack the class.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"split fraction {fraction} must be in [0, 1)")
    g = torch.Generator().manual_seed(mix_seed(seed, 0x5E1EC7))
    n = len(labels)
    if not stratify:
        perm = torch.randperm(n, generator=g)
        cut = round(fraction * n)
        return perm[cut:].sort().values, perm[:cut].sort().values
    held = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        perm = members[torch.randperm(len(members), generator=g)]
        take = round(fraction * len(members))
        if take == len(members):
            raise ConfigError(f"split fraction {fraction} holds out all {take} sample(s) of class {c}, leaving none "
                              "of it for training; lower the fraction")
        held.append(perm[:take])
    held_idx = torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.int64)
    mask = torch.ones(n, dtype=torch.bool)
    mask[held_idx] = False
    return torch.nonzero(mask).flatten(), held_idx


PARTITION_BUFFER_BYTES = 64 * 2**20  # the most bytes of rows ``second`` partition_rows copies out (its fast path)
PARTITION_CHUNK_BYTES = 2**20  # the rows ``first`` it gathers at a time there (one buffer, reused)
PARTITION_ROW_BYTES = 2**14  # larger rows take the cycle walk: one copy a row, its Python step small beside it


def partition_bytes(row: int, rows: int) -> int:
    """The most bytes :func:`partition_rows` holds beside ``rows`` rows of ``row`` bytes (for the memory checks of the
    data it splits): one row on the cycle walk (rows over :data:`PARTITION_ROW_BYTES`), else its copy of the rows
    ``second`` (at most ``PARTITION_BUFFER_BYTES``) and its gather buffer (at most ``PARTITION_CHUNK_BYTES``, at most
    the rows ``first`` after ``second[0]``): together at most the ``rows`` rows."""
    if row > PARTITION_ROW_BYTES:
        return row
    return min(rows * row, PARTITION_BUFFER_BYTES + PARTITION_CHUNK_BYTES)


def partition_rows(x: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> int:
    """Reorder the rows (dim 0) of ``x`` in place: the old rows ``first``, then the old rows ``second``, each in
    ascending order (``first``, ``second``: disjoint, ascending int64 indices that cover ``range(N)``, as
    :func:`split_indices` gives them); returns ``len(first)``. The new row ``j`` is the old row ``src[j]``
    (``src = first ++ second``); the rows before ``second[0]`` stay where they are.

    Rows of at most :data:`PARTITION_ROW_BYTES` whose rows ``second`` take at most :data:`PARTITION_BUFFER_BYTES`:
    the rows ``second`` are copied out, the rows ``first`` gathered down through one reused buffer of
    :data:`PARTITION_CHUNK_BYTES` (``first[j] >= j``: a chunk reads only rows not yet written), and the copy written
    after them. Otherwise the permutation is applied cycle by cycle (:func:`_partition_cycles`: one row held, one
    Python step a row, which is what small rows pay for: 60,000 labels took 144 ms that way, now under 1 ms; large
    rows move once, not twice). Extra memory: at most ``PARTITION_BUFFER_BYTES + PARTITION_CHUNK_BYTES`` (taking
    both parts as copies held twice the rows beside ``x``, which no memory check counted; :func:`partition_bytes`
    is what the event loaders' checks count for it)."""
    row = math.prod(x.shape[1:]) * x.element_size()
    if len(second) == 0:
        return len(first)
    if row > PARTITION_ROW_BYTES or len(second) * row > PARTITION_BUFFER_BYTES:
        _partition_cycles(x, torch.cat((first, second)).tolist(), int(second[0]))
        return len(first)
    n, begin = len(first), int(second[0])
    held = torch.index_select(x, 0, second)  # [len(second), ...]
    step = max(1, min(n - begin, PARTITION_CHUNK_BYTES // max(1, row)))
    buffer = x.new_empty((step, *x.shape[1:]))  # [step, ...] reused: a fresh gather was 3-6x slower
    for start in range(begin, n, step):
        part = buffer[:min(step, n - start)]
        torch.index_select(x, 0, first[start:start + step], out=part)  # rows >= start: none written yet
        x[start:start + len(part)].copy_(part)
    x[n:] = held
    return n


def _partition_cycles(x: torch.Tensor, src: list[int], begin: int) -> None:
    """``x[j] = old x[src[j]]`` in place, cycle by cycle from row ``begin`` (the rows before it stay): each cycle's
    first row saved and every other row copied once onto the place it leaves (one row held beside ``x``)."""
    done = bytearray(len(src))
    for start in range(begin, len(src)):
        k = src[start]
        if done[start] or k == start:
            continue
        saved = x[start].clone()  # [...] the one row held
        j = start
        while k != start:
            x[j] = x[k]
            done[j] = 1
            j, k = k, src[k]
        x[j] = saved
        done[j] = 1


def split_in_place(dataset, keep: torch.Tensor, held: torch.Tensor):
    """``(rows keep, rows held)`` of a data set holding ``.x`` and ``.y`` (``EventFrameDataset``,
    ``TensorDataset``), as views of its tensors after :func:`partition_rows` reordered them in place: the same
    rows as ``(dataset.subset(keep), dataset.subset(held))`` without a copy of ``x``. For a data set that nothing
    else holds: its rows are reordered."""
    n = partition_rows(dataset.x, keep, held)
    partition_rows(dataset.y, keep, held)
    make, name = type(dataset), getattr(dataset, "name", "data")
    return make(dataset.x[:n], dataset.y[:n], name), make(dataset.x[n:], dataset.y[n:], name)


IMAGE_STATS_CHUNK = 4096  # samples a chunk of channel_stats (fewer for large samples: stats_rows)


def channel_stats(x: torch.Tensor, chunk: int = IMAGE_STATS_CHUNK) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of images ``x [N, C, H, W]``, over N, H, W
    (:func:`axis_stats` along axis 1)."""
    return axis_stats(x, 1, chunk)


STATS_CHUNK_VALUES = 2**24  # the most values of x one chunk of axis_stats converts to float64


def stats_rows(sample_values: int, chunk: int) -> int:
    """The samples of ``sample_values`` values each that one chunk of :func:`axis_stats` takes: ``chunk``, fewer where
    those would hold more than :data:`STATS_CHUNK_VALUES` values, at least one."""
    return max(1, min(chunk, STATS_CHUNK_VALUES // max(1, sample_values)))


def stats_bytes(sample_values: int, rows: int, chunk: int = IMAGE_STATS_CHUNK) -> int:
    """The most bytes :func:`axis_stats` (``chunk``) holds beside ``rows`` samples of ``sample_values`` values each, for
    the memory checks of the data it is taken of: its float64 chunk (at most the ``rows``; at least one sample, which
    the float64 copy of the first sample that gives the shift, freed before the chunks, does not pass)."""
    return 8 * sample_values * max(1, min(rows, stats_rows(sample_values, chunk)))


def splitting_bytes(row: int, rows: int, sample_values: int, val_fraction: float,
                    chunk: int = IMAGE_STATS_CHUNK) -> int:
    """The most bytes :func:`make_splits` holds beside ``rows`` in-memory training samples of ``row`` bytes
    (``sample_values`` values) each, for the memory checks of the data it splits: with ``val_fraction > 0`` the copies
    its default split (``subset``) makes of both parts, ``rows * (row + 8)`` (the samples and their int64 labels), and
    beside them the float64 chunk of the training part's statistics (:func:`stats_bytes` with ``chunk``)."""
    return (rows * (row + 8) if val_fraction > 0 else 0) + stats_bytes(sample_values, rows, chunk)


def axis_stats(x: torch.Tensor, axis: int, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and population standard deviation of ``x`` per entry ``c`` of dim ``axis``, over every other dim.

    With ``K_c`` the largest value of channel ``c`` in the first sample (a shift) and ``d = x[..., c, ...] - K_c``:
    ``mean_c = K_c + E[d]``, ``std_c = sqrt(E[d^2] - E[d]^2)``, accumulated in float64 over chunks of ``chunk``
    samples, fewer where those would hold more than :data:`STATS_CHUNK_VALUES` values (128 MiB in float64, shifted
    and squared in place: 2048 event frames of 16 x 2 x 128 x 128 made an 8 GiB float64 chunk, its shift and its
    square beside it), so no full-size copy is made. The shift makes a constant channel's std exactly 0 (unshifted,
    ``E[x^2] - mean^2`` left round-off up to ~1e-8 there, which ``normalize`` then divided by). Returns ``([C],
    [C])`` tuples; an empty ``x`` gives means and stds of 0.
    """
    c = x.shape[axis]
    chunk = stats_rows(x[:1].numel(), chunk)
    dims = tuple(d for d in range(x.dim()) if d != axis)
    view = [1] * x.dim()
    view[axis] = c
    shift = x[:1].double().amax(dim=dims) if x.numel() else torch.zeros(c, dtype=torch.float64)  # [C]
    s1 = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].to(torch.float64, copy=True)  # [chunk, ...], the one float64 buffer
        part -= shift.view(view)
        s1 += part.sum(dim=dims)
        s2 += part.square_().sum(dim=dims)
        del part  # before the next chunk's buffer is made: both were alive at once (2 x 128 MiB)
    count = max(1, x.numel() // max(1, c))
    mean = s1 / count
    std = (s2 / count - mean.square()).clamp_min(0).sqrt()
    return tuple((shift + mean).tolist()), tuple(std.tolist())


def make_splits(train, test, *, val_fraction: float, seed: int, num_classes: int,
                class_names, name: str = "", stats=None, empty_test_ok: bool = False, split=None) -> DataSplits:
    """Take a stratified, seeded validation part out of ``train`` and compute the train statistics.

    ``stats(dataset) -> (mean, std)`` computes statistics of a data set without ``.x`` (streaming); the
    default is :func:`channel_stats` on ``dataset.x``. ``split(train, keep, held) -> (train, val)`` takes the
    validation part; the default copies both (``subset``), :func:`split_in_place` reorders a data set that only
    the loader holds, without the copy. An empty split (the test split may be empty only with
    ``empty_test_ok``: a loader asked for none), or test samples of another shape than the training samples,
    is a ``DataCorruptError`` here, at load time.
    """
    check_splits(train, test, name, empty_test_ok)
    check_labels(train, test, num_classes, name)
    val = None
    if val_fraction > 0:
        keep, held = split_indices(train.y, val_fraction, seed)
        train, val = split(train, keep, held) if split is not None else (train.subset(keep), train.subset(held))
        if len(val) == 0 or len(train) == 0:
            raise ConfigError(f"{name or 'data'}: val_fraction {val_fraction} of {len(keep) + len(held)} training "
                              f"samples leaves {len(train)} for training and {len(val)} for validation; "
                              "both need at least one (set data.val_fraction accordingly, or 0)")
    mean, std = stats(train) if stats is not None else channel_stats(train.x)
    return DataSplits(train=train, val=val, test=test, num_classes=num_classes,
                      input_shape=tuple(train.shape), mean=mean, std=std,
                      class_names=tuple(class_names), name=name)


def whole_labels(values, low: int, high: int, source: str) -> np.ndarray:
    """``values`` (a list or array read from a file) as int64 ``[N]`` after checking that they are numbers, whole
    and in ``low .. high``; a one-line ``DataCorruptError`` starting with ``source`` otherwise (a cast first would
    truncate 1.7 to 1 and crash on strings; an array of complex numbers lost its imaginary parts in silence, one of
    texts such as "3" or of time spans was read as numbers)."""
    try:
        raw = np.asarray(values)
        if raw.dtype.kind in "cmMUSV":  # complex, time spans and dates, texts, raw bytes
            raise TypeError(f"an array of {raw.dtype}")
        arr = raw.astype(np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise DataCorruptError(f"{source}: labels are not numbers ({one_line(e)})") from e
    if arr.size and not (np.isfinite(arr).all() and (arr == np.round(arr)).all() and arr.min() >= low
                         and arr.max() <= high):
        raise DataCorruptError(f"{source}: labels must be whole numbers {low} to {high}, got values from "
                               f"{arr.min():g} to {arr.max():g}")
    return arr.astype(np.int64)


def check_labels(train, test, num_classes: int, name: str = "") -> None:
    """A one-line ``DataCorruptError`` when a split held in memory (``.y``) has a label outside
    ``0 .. num_classes - 1``, which the loss would fail on (or, on a GPU, read out of bounds) mid-training."""
    for split, dataset in (("training", train), ("test", test)):
        y = getattr(dataset, "y", None)
        if not isinstance(y, torch.Tensor) or len(y) == 0:
            continue
        check_whole_labels(y, f"{name or 'data'}: the {split} labels")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            raise DataCorruptError(f"{name or 'data'}: the {split} labels run from {low} to {high}; with "
                                   f"{num_classes} classes they must be 0 to {num_classes - 1}")


def check_splits(train, test, name: str = "", empty_test_ok: bool = False) -> None:
    """A one-line ``DataCorruptError`` when ``train`` or (unless ``empty_test_ok``) ``test`` holds no samples,
    or when their samples differ in shape ``(C, H, W)`` (e.g. 8x8 test images for 28x28 training images)."""
    label = name or "data"
    for split, dataset in (("training", train), ("test", test)):
        if len(dataset) == 0 and not (split == "test" and empty_test_ok):
            raise DataCorruptError(f"{label}: the {split} split holds no samples; check its files")
    if tuple(train.shape) != tuple(test.shape):
        raise DataCorruptError(f"{label}: test samples have shape {list(test.shape)} but training samples "
                               f"{list(train.shape)}; both splits must come from the same data set")
