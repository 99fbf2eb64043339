"""Session 41: memory peaks of the event-data splitting, statistics and count images, on the source tree on PYTHONPATH.

    benchmarks/results/session41/event_data_memory/run.sh     # all cases on the trees before/after each fix, and HEAD
    benchmarks/results/session41/at_rev.sh REV benchmarks/results/session41/event_data_memory/event_data_memory.py CASE

Cases (random uint8 frames of 10 x 2 x 34 x 34 = 23,120 bytes a sample, labels 0-9 in turn, built before measuring):
  split   held_out_splits of 4000 samples (88 MiB; test 0.1, val 0.1), frame statistics stubbed out: the peak RSS
          growth of the splitting (1fed63d: 167 -> 48 MiB in session 40)
  stats   frame_stats of 2880 samples (64 MiB): peak RSS growth (1560e22: 727 -> 261 MiB)
  counts  frames_to_counts of [50, 100, 2, 34, 34] frames (11.56 MB): tracemalloc peak (32919c4: 46.7 -> 0.49 MB)
  loader_frames, loader_counts  held_out_splits of 4000 samples as cifar10_dvs/ncaltech101 run it (statistics on;
          data.args.output frames / counts): peak RSS growth beside the frames that bin_all's memory check counts
One measurement a process (run.sh starts three), after the same call on 1/10 of the samples has paged in the code
it runs (a first call's library pages otherwise count as growth); peak_rss.peak_growth resets the peak before it."""

import sys
import tracemalloc

import numpy as np
import torch
from peak_rss import MiB, peak_growth

from deepspike.data.neuromorphic import loading
from deepspike.data.neuromorphic.dataset import EventFrameDataset, frame_stats
from deepspike.data.neuromorphic.frames import frames_to_counts

CLASSES = [str(c) for c in range(10)]


def frames(n: int, t: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 4, (n, t, 2, 34, 34), dtype=np.uint8), np.arange(n, dtype=np.int64) % 10


def split_once(output: str, n: int = 4000) -> tuple[float, float]:
    x, y = frames(n)
    options = loading.FrameOptions(output=output)
    _, grew = peak_growth(lambda: loading.held_out_splits(x, y, options, test_fraction=0.1, split_seed=0,
                                                         val_fraction=0.1, seed=0, class_names=CLASSES, name="fake"))
    return x.nbytes / MiB, grew


def stats_once(n: int = 2880) -> tuple[float, float]:
    x, y = frames(n)
    data = EventFrameDataset(torch.from_numpy(x), torch.from_numpy(y), "fake")
    _, grew = peak_growth(lambda: frame_stats(data))
    return x.nbytes / MiB, grew


def counts_once(n: int = 50) -> tuple[float, float]:
    x, _ = frames(n, t=100)
    tracemalloc.start()
    frames_to_counts(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return x.nbytes / 1e6, peak / 1e6


def main(case: str) -> None:
    if case == "split":
        loading.frame_stats = lambda dataset: ((0.0,) * 2, (1.0,) * 2)  # statistics stubbed out
    once = {"split": lambda n: split_once("frames", n), "stats": stats_once, "counts": counts_once,
            "loader_frames": lambda n: split_once("frames", n),
            "loader_counts": lambda n: split_once("counts", n)}[case]
    full = {"stats": 2880, "counts": 50}.get(case, 4000)
    once(full // 10)  # warm-up: pages in the code the call runs
    held, grew = once(full)
    unit = "MB (tracemalloc peak)" if case == "counts" else "MiB (peak RSS growth)"
    print(f"{case}: frames {held:.2f}, peak {grew:.2f} {unit}, {grew / held:.2f} x the frames", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
