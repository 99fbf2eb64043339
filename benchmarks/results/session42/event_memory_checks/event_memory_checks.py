"""Session 42: what the event loaders' memory checks are told against the peak resident memory of the work they
check, on the source tree on PYTHONPATH (peak_rss.py of session 41 on it too: at_rev.sh puts it there).

    MALLOC_MMAP_THRESHOLD_=131072 benchmarks/results/session41/at_rev.sh REV \\
        benchmarks/results/session42/event_memory_checks/event_memory_checks.py CASE

Cases (one measurement a process, after the same call on 1/10 of the samples has paged in the code):
  split      split_in_place of 8000 N-MNIST count images (float32 2 x 34 x 34 = 9,248 bytes, 74 MB), 6000 rows held
             out: peak RSS growth, and the bytes check_binned (8000 samples, timesteps 10, output counts) counts
             beyond the frames and images
  stats      frame_stats of 2880 N-MNIST frames (10 x 2 x 34 x 34 uint8, 64 MiB): peak RSS growth, and the bytes
             check_binned (2880 samples, timesteps 10) counts beyond the frames
  emulation [S T STRIDE]  emulate_frames of 2000 random 28 x 28 images (pad 3: a 34 x 34 sensor), S position
             samples (default 4), T timesteps (default 1), stride (default 1): peak RSS growth, and the bytes
             check_emulation_memory counts with held = the output frames (which the loader counts in held)
"""

import sys

import numpy as np
import torch
from peak_rss import MiB, peak_growth

from deepspike.data import TensorDataset
from deepspike.data.neuromorphic import frames, loading, static_events
from deepspike.data.neuromorphic.dataset import EventFrameDataset, frame_stats
from deepspike.data.neuromorphic.emulation import emulate_frames
from deepspike.data.splits import split_in_place, split_indices


def told(call, module=frames) -> int:
    """The bytes ``call`` hands ``check_fits_memory`` (through ``module``'s name for it)."""
    seen, original = [], module.check_fits_memory
    module.check_fits_memory = lambda need, have, refusal: seen.append(need)
    try:
        call()
    finally:
        module.check_fits_memory = original
    return seen[-1]


def split_once(n: int) -> tuple[float, float]:
    y = torch.arange(n) % 10
    images = TensorDataset(torch.rand(n, 2, 34, 34), y, "fake")
    keep, held = split_indices(y, 0.75, 0)
    _, grew = peak_growth(lambda: split_in_place(images, keep, held))
    beyond = told(lambda: loading.check_binned(n, loading.FrameOptions(timesteps=10, output="counts"), (34, 34)))
    return grew, (beyond - n * (23_120 + 9_248)) / MiB


def stats_once(n: int) -> tuple[float, float]:
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 4, (n, 10, 2, 34, 34), dtype=np.uint8))
    data = EventFrameDataset(x, torch.arange(n) % 10, "fake")
    _, grew = peak_growth(lambda: frame_stats(data))
    beyond = told(lambda: loading.check_binned(n, loading.FrameOptions(timesteps=10), (34, 34)))
    return grew, (beyond - n * 23_120) / MiB


def emulation_once(n: int, samples: int = 4, steps: int = 1, stride: int = 1) -> tuple[float, float]:
    images = torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(0))
    _, grew = peak_growth(lambda: emulate_frames(images, steps, samples // steps, stride=stride))
    out = n * steps * 2 * (34 // stride) ** 2
    check = static_events.check_emulation_memory
    try:
        need = told(lambda: check(n, samples, (34, 34), "fake", steps, out, stride=stride), static_events)
    except TypeError:  # the check before session 42 took no stride
        need = told(lambda: check(n, samples, (34, 34), "fake", steps, out), static_events)
    return grew, need / MiB


def main(case: str, *args: str) -> None:
    once, full = {"split": (split_once, 8000), "stats": (stats_once, 2880), "emulation": (emulation_once, 2000)}[case]
    once(full // 10, *map(int, args))  # warm-up: pages in the code the call runs
    grew, counted = once(full, *map(int, args))
    print(f"{case} {' '.join(args)}: peak RSS growth {grew:.2f} MiB, counted by the check {counted:.2f} MiB")


if __name__ == "__main__":
    main(*sys.argv[1:])
