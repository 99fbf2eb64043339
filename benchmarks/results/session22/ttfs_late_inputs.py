"""TTFS spike times with late inputs, every CPU backend against the float64 torch backend (session 22).

Row example: inputs at 0, 0 and 1000 with weights 0.6 fire at ln 6 (the third input is not causal). Random rows:
300 rows of 6 inputs in [0, 3) with two of them moved up to 300 tau later, 4 outputs; a row is wrong where a time
differs from float64 torch's by more than 1e-3 of the row's largest finite time (+inf must match).
Run: OMP_NUM_THREADS=1 python benchmarks/results/session22/ttfs_late_inputs.py
"""

import torch

import deepspike as ds

w = torch.tensor([[0.6, 0.6, 0.6]])
t = torch.tensor([[0.0, 0.0, 1000.0]])
for backend in ("native", "numba", "torch"):
    print(f"{backend:>6}: inputs (0, 0, 1000), w 0.6 -> {ds.spike_times(t, w, backend=backend).item():.6f}")
g = torch.Generator().manual_seed(0)
wrong = {"native": 0, "numba": 0}
for _ in range(300):
    t = torch.rand(1, 6, generator=g) * 3
    t[0, torch.randperm(6, generator=g)[:2]] = torch.rand(2, generator=g) * 300
    w = torch.randn(4, 6, generator=g) * 0.8 + 0.3
    ref = ds.spike_times(t.double(), w.double(), backend="torch")
    scale = 1 + (ref[torch.isfinite(ref)].abs().max().item() if torch.isfinite(ref).any() else 0)
    for backend in wrong:
        out = ds.spike_times(t, w, backend=backend).double()
        same_inf = torch.equal(torch.isinf(out), torch.isinf(ref))
        fin = torch.isfinite(ref)
        close = not fin.any() or (out[fin] - ref[fin]).abs().max().item() <= 1e-3 * scale
        wrong[backend] += not (same_inf and close)
print("rows wrong of 300:", wrong)
