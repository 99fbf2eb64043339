"""Python calls made by 400 streamed steps of one zoo net (``ds.Stream(net).step``), counted by cProfile after 50
warm-up steps, one torch thread; the image is random (the step's work does not depend on it).

    PYTHONPATH=<code>/src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session35/stream_profile.py [NAME]
"""

import cProfile
import pstats
import sys

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
stream.reset()
profile = cProfile.Profile()
profile.enable()
for _ in range(400):
    stream.step(image)
profile.disable()
print(name, "Python calls in 400 steps:", pstats.Stats(profile).total_calls)
