"""Session 41: how many float32 TTFS spikes have a slope that disagrees with their causal set, per CPU backend, on
the source tree on PYTHONPATH (1782600 kept a spike time that rounded onto its last causal input strictly after it;
session 40 quoted 3 of 385,629 dense relpsp, 1 of 390,862 conv exp, 3 of 104,444 long exp spikes before, 0 after).

    benchmarks/results/session41/ttfs_causal_slope/run.sh       # 1782600^ and HEAD
    benchmarks/results/session41/at_rev.sh REV benchmarks/results/session41/ttfs_causal_slope/ttfs_causal_slope.py

A spike's slope D is what the backend's forward returns (saved for backward); backward's causal set is
C = {i : t_i < t_out}, and its gradients are right only if D = sum_C w (relpsp) or sum_C w - theta (exp), computed here
in float64. A spike disagrees when |D - D_C| > 1e-3 (1 + sum_C |w|) (float32 rounding of the slope is ~1e-7 of it).
Also counted: the disagreeing spikes whose D matches the set with the inputs at exactly t_out added (the input the
forward counted but backward's mask t_i < t_out drops). Cases (theta 1, tau 1, seeds from 0, built from torch's
generator):
  dense   3 seeds of 2000 samples x 256 inputs -> 100 outputs, t ~ U[0, 4), w ~ N(0, 0.3^2)
  conv    1 seed of 64 x 1 x 28 x 28 images, 16 filters 5 x 5 (stride 1, no padding), t ~ U[0, 3), w ~ N(0, 0.5^2)
  long    2 seeds of dense 1000 x 128 -> 100, t ~ U[0, 60) (60 tau: the exp kernel's re-referenced epochs),
          w ~ N(0, 0.3^2)"""

import torch
import torch.nn.functional as F

from deepspike.ttfs import backend_native, backend_numba, backend_torch

BACKENDS = {"torch": backend_torch, "numba": backend_numba, "native": backend_native}
THETA, TAU = 1.0, 1.0


def case(name: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if name == "conv":
        return torch.rand(64, 1, 28, 28, generator=g) * 3, torch.randn(16, 1, 5, 5, generator=g) * 0.5
    rows, n_in, span = (2000, 256, 4.0) if name == "dense" else (1000, 128, 60.0)
    t = torch.rand(rows, n_in, 1, 1, generator=g) * span
    return t, torch.randn(100, n_in, 1, 1, generator=g) * 0.3


def counts(t_in, weight, t_out, slope, kernel: str) -> tuple[int, int, int]:
    """(spikes, disagreeing, of those: D counts the inputs at t_out); float64 references in blocks of rows."""
    o = weight.shape[0]
    cols = F.unfold(t_in.double(), weight.shape[2:]).transpose(1, 2).reshape(-1, 1, weight[0].numel())  # [R, 1, N]
    w = weight.double().reshape(1, o, -1)  # [1, O, N]
    t_out = t_out.double().permute(0, 2, 3, 1).reshape(-1, o, 1)  # [R, O, 1]
    slope = slope.double().permute(0, 2, 3, 1).reshape(-1, o)  # [R, O]
    spikes = bad = at_out = 0
    for r in range(0, len(cols), 256):
        tc, to, d = cols[r:r + 256], t_out[r:r + 256], slope[r:r + 256]
        fired = torch.isfinite(to[..., 0])
        ref = (w * (tc < to)).sum(-1) - (THETA if kernel == "exp" else 0.0)  # [r, O]
        with_ties = ref + (w * (tc == to)).sum(-1)
        tol = 1e-3 * (1 + (w.abs() * (tc < to)).sum(-1))
        wrong = fired & ((d - ref).abs() > tol)
        spikes += int(fired.sum())
        bad += int(wrong.sum())
        at_out += int((wrong & ((d - with_ties).abs() <= tol)).sum())
    return spikes, bad, at_out


def main() -> None:
    torch.set_num_threads(1)
    cases = (("dense", ("relpsp", "exp"), 3), ("conv", ("relpsp", "exp"), 1), ("long", ("exp",), 2))
    for name, kernels, seeds in cases:
        for kernel in kernels:
            for backend, impl in BACKENDS.items():
                total = [0, 0, 0]
                for seed in range(seeds):
                    t_in, weight = case(name, seed)
                    out = impl.forward(t_in, weight, None, (1, 1), (0, 0), kernel, THETA, TAU, 1 << 22)
                    if out is None:  # native: a span of more epochs than an entry names
                        break
                    total = [a + b for a, b in zip(total, counts(t_in, weight, out[0], out[1], kernel))]
                else:
                    print(f"{name} {kernel} {backend}: {total[1]} of {total[0]:,} spikes disagree "
                          f"({total[2]} counted an input at t_out)", flush=True)
                    continue
                print(f"{name} {kernel} {backend}: not taken (span too long for the native kernels)", flush=True)


if __name__ == "__main__":
    main()
