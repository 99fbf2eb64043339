"""Time of one streamed step of one sample (``ds.Stream(net).step``) for a zoo net, the fastest of 5 runs of 300 steps
after 50 warm-up steps, one torch thread; the image is random (the step's work does not depend on it).

    PYTHONPATH=<code>/src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session35/stream_step_time.py NAME
"""

import sys
import time

import torch

from deepspike.methods.streaming import Stream
from deepspike.training.pretrained import load_pretrained

torch.set_num_threads(1)
name = sys.argv[1] if len(sys.argv) > 1 else "stbp_fmnist"
_, _, model = load_pretrained(name)
image = torch.rand(1, 1, 28, 28)
stream = Stream(model)
for _ in range(50):
    stream.step(image)
best = float("inf")
for _ in range(5):
    stream.reset()
    start = time.perf_counter()
    for _ in range(300):
        stream.step(image)
    best = min(best, (time.perf_counter() - start) / 300 * 1e6)
print(name, "per step us (best of 5)", round(best))
