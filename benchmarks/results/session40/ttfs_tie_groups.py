"""Session 40: forward CPU time of the closed-form TTFS layer on the numba and native backends (one thread), inputs
with and without tie groups (times quantised to 16 / 8 levels), for the check-whole-tie-groups change.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python \
        benchmarks/results/session40/ttfs_tie_groups.py

Prints per case, backend and kernel the median and the minimum of 15 forward passes (time.process_time)."""

import statistics
import time

import torch

from deepspike.ttfs import spike_times, spike_times_conv2d


def cases():
    g = torch.Generator().manual_seed(0)
    dense_w = torch.randn(256, 64, generator=g) * 0.3
    conv_w = torch.randn(16, 1, 5, 5, generator=g) * 0.5
    raw = torch.rand(512, 64, generator=g) * 3
    img = torch.rand(64, 1, 28, 28, generator=g) * 3
    return {
        "dense 512x64->256 no ties": (spike_times, raw, dense_w),
        "dense 512x64->256 16 levels": (spike_times, (raw * 16 / 3).floor() * 3 / 16, dense_w),
        "conv 64x1x28x28 5x5x16 no ties": (spike_times_conv2d, img, conv_w),
        "conv 64x1x28x28 5x5x16 8 levels": (spike_times_conv2d, (img * 8 / 3).floor() * 3 / 8, conv_w),
    }


def main() -> None:
    torch.set_num_threads(1)
    for name, (fn, t, w) in cases().items():
        for backend in ("numba", "native"):
            for kernel in ("exp", "relpsp"):
                fn(t, w, kernel=kernel, backend=backend)  # compile / warm up
                times = []
                for _ in range(15):
                    start = time.process_time()
                    fn(t, w, kernel=kernel, backend=backend)
                    times.append(time.process_time() - start)
                print(f"{name:34s} {backend:6s} {kernel:6s} median {statistics.median(times) * 1e3:8.2f} ms "
                      f"min {min(times) * 1e3:8.2f} ms", flush=True)


if __name__ == "__main__":
    main()
