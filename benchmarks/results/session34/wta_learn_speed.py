"""Session 34: milliseconds per image of the trained 400-neuron net (runs/wta_fmnist_400) learning from and scoring
the first 128 Fashion-MNIST training images, one thread, rasters included (weights copied, nothing saved). Run from
the repository root with the code to time on PYTHONPATH:
OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/results/session34/wta_learn_speed.py"""

import copy
import time

import torch

from deepspike.training.reload import load_run

config, parts, _ = load_run("runs/wta_fmnist_400", device="cpu")
x, y = parts.data.train.x[:128], parts.data.train.y[:128]  # intensities in [0, 1]
net = copy.deepcopy(parts.model)
torch.manual_seed(0)
net.learn(x[:4], y[:4])  # compile / load the kernels untimed
for name, run in (("learn", lambda: net.learn(x, y)), ("score", lambda: net.responses(x))):
    torch.manual_seed(0)
    start = time.perf_counter()
    run()
    print(f"{name}: {(time.perf_counter() - start) / len(x) * 1000:.2f} ms per image")
