"""Session 33: wta_stdp (paper defaults, 400 neurons, seed 0) learning the first 400 Fashion-MNIST training images
in blocks of 50: ms per image, shows, spikes per show, threshold spread. Run from the repository root:
OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/results/session33/wta_first_images.py
(At 64d4da4 the kernel took no delays: the wrapper then read ``counting(w, th, sp, learn, c)``.)"""

import time

import numpy as np
import torch

from deepspike.data.registry import load_dataset
from deepspike.layers import wta_kernels
from deepspike.methods.registry import get_method
from deepspike.models import create_architecture

torch.manual_seed(0)
net = get_method("wta_stdp").build(create_architecture("diehl_cook", 10, (1, 28, 28), neurons=400))
data = load_dataset("fashion_mnist")
shows = []
present = wta_kernels.present


def counting(w, th, dl, sp, learn, c):
    out = present(w, th, dl, sp, learn, c)
    shows.append(int(out.sum()))
    return out


wta_kernels.present = counting
x, y = data.train.x[:400], data.train.y[:400]
for k in range(0, 400, 50):
    shows.clear()
    t = time.time()
    net.learn(x[k:k + 50], y[k:k + 50])
    th = net.theta
    print(k, f"{(time.time() - t) / 50 * 1000:.0f} ms/sample", "shows", len(shows), "spikes/show mean",
          np.mean(shows).round(1), "first", shows[:6], "theta", float(th.min()), float(th.mean()), float(th.max()))
