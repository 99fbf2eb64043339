"""Neuromorphic (event) data: N-MNIST, N-Caltech101, CIFAR10-DVS, DVS Gesture, and emulated events from images;
and sequences held the same way: SHD/SSC spikes, image rows.

Loaders register with :func:`deepspike.data.load_dataset`: ``nmnist``, ``ncaltech101``, ``cifar10_dvs``, ``dvs_gesture``
(real recordings: CIFAR10-DVS's AEDAT files and ``denoise_ms`` through tonic, extra ``deepspike[neuromorphic]``;
the others with numpy), ``fashion_mnist_events``,
``mnist_events``, ``digits_events`` (emulated, no extra needed). With ``output: frames`` (default) a split
holds :class:`EventFrameDataset` ``x [N, T, 2, H, W]`` (uint8, cast to float32 per batch) and
``DataSplits.input_shape`` is the per-step ``(2, H, W)``: train with ``stbp`` and ``method.encoder: frames``
(``method.timesteps <= T``). With ``output: counts`` a split holds event-count images ``[N, 2, H, W]`` in
[0, 1] for any image method (``spikebp``, conversion, ANN). Sequence sets hold :class:`EventFrameDataset`
``x [N, T, F]`` with per-step ``(F,)``: ``shd``, ``ssc`` (audio spike counts, h5py) and ``digits_rows``,
``mnist_rows``, ``fashion_mnist_rows`` (one image row per step, float32 in [0, 1]).
"""

from deepspike.data.neuromorphic import (  # noqa: F401  (register the loaders)
    cifar10dvs,
    dvs_gesture,
    ncaltech101,
    nmnist,
    shd,
    static_events,
    static_rows,
)
from deepspike.data.neuromorphic.dataset import EventFrameDataset, frame_stats
from deepspike.data.neuromorphic.emulation import emulate_events, emulate_frames, saccade_offsets
from deepspike.data.neuromorphic.formats import (
    read_aedat2,
    read_nmnist_bin,
    write_aedat2,
    write_gesture_npy,
    write_nmnist_bin,
)
from deepspike.data.neuromorphic.frames import events_to_frames, frames_to_counts
from deepspike.data.neuromorphic.loading import FrameOptions

__all__ = [
    "EventFrameDataset",
    "FrameOptions",
    "emulate_events",
    "emulate_frames",
    "events_to_frames",
    "frame_stats",
    "frames_to_counts",
    "read_aedat2",
    "read_nmnist_bin",
    "saccade_offsets",
    "write_aedat2",
    "write_gesture_npy",
    "write_nmnist_bin",
]
