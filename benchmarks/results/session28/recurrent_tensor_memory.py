"""Exact tensor memory of bench_recurrent.py's deepspike training step (the SHD-shaped recurrent net): MB autograd
saves in the forward pass and the peak of live tensors in one step (benchmarks/tensor_memory.py's two measures).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/results/session28/recurrent_tensor_memory.py
(run from a checkout of the commit to measure; session 28 ran it at b6437c4, before the recurrent scan, and after)
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench_recurrent import _deepspike, _inputs  # noqa: E402
from tensor_memory import saved_mb  # noqa: E402


def peak_mb(run, x, y) -> float:
    from torch.profiler import ProfilerActivity, profile

    def step():
        torch.nn.functional.cross_entropy(run(x), y).backward()

    step()
    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    live = peak = 0
    for _, nbytes in sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                            if e.name() == "[memory]"):
        live += nbytes
        peak = max(peak, live)
    return peak / 2**20


run, (x, y) = _deepspike(), _inputs()
print(f"saved for backward {saved_mb(run, x):.1f} MB, "
      f"peak tensors in a step {peak_mb(run, x, y):.1f} MB")
