"""Session 33: one presentation of the trained 400-neuron net (runs/wta_fmnist_400) on 16 Fashion-MNIST test images,
one thread: without learning (serial and batched), with learning, and drawing the rasters. From the repository root:
OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/results/session33/wta_presentation_speed.py"""

import time

from deepspike.core.threads import run_numba_kernel
from deepspike.layers import wta_kernels
from deepspike.training.reload import load_run

config, parts, _ = load_run("runs/wta_fmnist_400", device="cpu")
net = parts.model
x = parts.data.test.x[:16].double().flatten(1)
w, th, dl = net._kernel_arrays()
r = net._rasters(x, 0)
c = net.constants
wta_kernels.present(w.copy(), th.copy(), dl, r[0], False, c)  # compile / load the kernels untimed
run_numba_kernel(wta_kernels.present_batch, w, th, dl, r, c)
t = time.time()
for b in range(16):
    wta_kernels.present(w, th, dl, r[b], False, c)
print("present x16:", (time.time() - t) / 16 * 1000, "ms")
t = time.time()
run_numba_kernel(wta_kernels.present_batch, w, th, dl, r, c)
print("batch:", (time.time() - t) / 16 * 1000, "ms")
wl, thl = w.copy(), th.copy()
t = time.time()
for b in range(16):
    wta_kernels.present(wl, thl, dl, r[b], True, c)
print("present learn x16:", (time.time() - t) / 16 * 1000, "ms")
t = time.time()
net._rasters(x, 0)
print("rasters:", (time.time() - t) / 16 * 1000, "ms")
