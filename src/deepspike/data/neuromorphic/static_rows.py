"""Images read one row per time step ("sequential", row-wise MNIST): ``digits_rows``, ``mnist_rows``,
``fashion_mnist_rows``.

A standard benchmark for recurrent spiking nets: the net sees one image row per step, so it must keep what it saw
in earlier rows to classify. Image ``n`` of the static set (``x [N, C, H, W]``, the floats its loader gives:
digits ``v / 16``, (Fashion-)MNIST ``v / 255``, all in [0, 1]) becomes the sequence ``rows [N, T = H, F = C * W]``
with ``rows[n, t, c * W + w] = x[n, c, t, w]``: 28 steps of 28 features for (Fashion-)MNIST, 8 of 8 for digits.
The rows are analog pixel values, not spikes (the first layer's current is ``W x_t``), stored as float32 (the same
values as the image set, exactly; the frame pipeline's per-batch float32 cast leaves them as they are).

A split holds an :class:`EventFrameDataset` ``x [N, T, F]``, like SHD's: ``DataSplits.input_shape`` is ``(F,)``,
``split.timesteps`` is ``H``, ``mean``/``std`` are per feature (F values, so ``data.normalize`` standardises each
column position); train with ``method.encoder: frames`` and a sequence model (``model.name: rsnn``). The train/test
split is the static set's; ``val_fraction`` of train (stratified, seeded) is ``val``, the same samples as the static
set's val with that seed. Nothing is cached: the rows are a reshape of the images the static loader read.
"""

from __future__ import annotations

import torch

from deepspike.core.memory import GiB, check_fits_memory, physical_memory
from deepspike.data.neuromorphic.dataset import FRAME_STATS_CHUNK, EventFrameDataset
from deepspike.data.neuromorphic.loading import event_splits, held_bytes
from deepspike.data.registry import declared_shape, load_dataset, register_dataset
from deepspike.data.splits import DataSplits, splitting_bytes

SOURCES = {"digits": "scikit-learn's 8 x 8 digits (T = 8, F = 8)", "mnist": "MNIST (T = 28, F = 28)",
           "fashion_mnist": "Fashion-MNIST (T = 28, F = 28)"}


def image_rows(x: torch.Tensor) -> torch.Tensor:
    """Images ``x [N, C, H, W]`` -> sequences of their rows ``[N, H, C * W]``: ``out[n, t, c * W + w] = x[n, c, t, w]``
    (a view of ``x`` when ``C == 1``)."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 1, 3).reshape(n, h, c * w)


def check_rows_memory(static: DataSplits, val_fraction: float, name: str) -> None:
    """A one-line ``ConfigError`` when the rows would not fit this machine's memory, checked before they are made: the
    static set's images and labels (held throughout), the copies of both splits' rows that :func:`image_rows` makes of
    images of more than one channel (a view otherwise), the copies of the training rows that ``make_splits`` takes the
    validation part as (``subset`` of both parts, with their int64 labels) and the float64 chunk of their statistics
    (``frame_stats``; both ``splits.splitting_bytes``). Other in-memory data sets were checked; these were not."""
    n, c, h, w = static.train.x.shape
    row = h * c * w * static.train.x.element_size()
    copies = n + len(static.test) if c > 1 else 0
    sources = held_bytes([part for part in (static.train, static.val, static.test) if part is not None])
    split = splitting_bytes(row, n, h * c * w, val_fraction, FRAME_STATS_CHUNK)
    check_fits_memory(sources + copies * (row + 8) + split, physical_memory(), lambda need, have: (
        f"{name}: the {sources / GiB:.1f} GiB of images and labels of {static.name or 'the static set'}, "
        f"{copies:,} copied rows of {row + 8:,} bytes and {split:,} bytes of copies and buffers to split them and take "
        f"their statistics need {need} GiB, more than this machine's {have} GiB"))


def row_splits(source: str, data_dir, val_fraction: float, seed: int, download: bool) -> DataSplits:
    """Load the static set ``source`` (no val part) and give its train and test images as row sequences, split; rows
    that would not fit in memory are a one-line ``ConfigError`` (:func:`check_rows_memory`)."""
    static = load_dataset(source, data_dir=data_dir, download=download)
    name = f"{source}_rows"
    check_rows_memory(static, val_fraction, name)
    train, test = (EventFrameDataset(image_rows(split.x), split.y, name) for split in (static.train, static.test))
    return event_splits(train, test, val_fraction=val_fraction, seed=seed, class_names=static.class_names, name=name)


def _register(source: str):
    def loader(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False) -> DataSplits:
        return row_splits(source, data_dir, val_fraction, seed, download)

    loader.__name__ = f"load_{source}_rows"
    loader.__doc__ = (f"{SOURCES[source]} read one image row per time step: ``x [N, H, C * W]`` float32 in [0, 1], "
                      "``y [N]`` in 0..9 (module docstring).")
    return register_dataset(f"{source}_rows", shape=lambda **_: _declared(source))(loader)


def _declared(source: str) -> tuple[tuple[int, ...], int] | None:
    """The declared shape of ``{source}_rows``: rows of ``C * W`` values of the source's declared ``[C, H, W]``, its
    classes (``image_rows``)."""
    static = declared_shape(source, {})
    if static is None:
        return None
    c, _, w = static[0]
    return (c * w,), static[1]


load_digits_rows = _register("digits")
load_mnist_rows = _register("mnist")
load_fashion_mnist_rows = _register("fashion_mnist")

__all__ = ["check_rows_memory", "image_rows", "load_digits_rows", "load_fashion_mnist_rows", "load_mnist_rows",
           "row_splits"]
