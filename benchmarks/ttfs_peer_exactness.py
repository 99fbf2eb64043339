"""How close exact-snn-nn's spike times are to the root of its own membrane equation, against its grid size.

For a layer ``ExactTTFSLinear(784, 100, grid_pts=G)`` (library defaults otherwise: tau_m 15, tau_s 4, theta 1,
t_max 40, bias weight 1.5) on 16 random latency-coded inputs (``latency_encode(rand)``, seed 0), and for one
neuron with a single input at t = 0 of weight 1.0005 (its membrane peaks 0.0005 above threshold), the
reported time ``t_lib`` is compared with ``t_root``: 60 float64 bisections of the layer's exact membrane
``u(t) - theta`` (the library's own ``_u_at``) on ``[t_lib - 0.1, t_lib + 0.1]``, kept where that interval
brackets a sign change (``bracketed``; larger errors are not counted).
Printed: ``|t_lib - t_root|`` median and max, per grid size and dtype.

Run (the bench venv, where exact-snn-nn is installed): ``.bench-venv/bin/python
benchmarks/ttfs_peer_exactness.py [--grids 2001,201,41,11] [--markdown out.md]`` (under a minute on one thread).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from exact_snn import ExactTTFSLinear, _u_at, latency_encode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_checks import output_file, wholes, write_result  # noqa: E402


def time_error(layer, t_in: torch.Tensor) -> tuple[int, int, torch.Tensor]:
    """(fired, bracketed, |t_lib - t_root| [bracketed]) of ``layer`` on spike times ``t_in [n_in, B]``."""
    t = layer(t_in).detach().double()
    w, x = layer.weight.detach().double(), t_in.double()

    def u(tt):
        return _u_at(w, x, layer.t_bias, layer.tm, layer.ts, layer._alpha, layer.k_peak, tt) - layer.theta

    fired = torch.isfinite(t)
    tf = torch.where(fired, t, torch.zeros_like(t))
    lo, hi = (tf - 0.1).clamp(min=0.0), tf + 0.1
    ok = fired & (u(lo) < 0) & (u(hi) >= 0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        up = u(mid) >= 0
        hi, lo = torch.where(up, mid, hi), torch.where(up, lo, mid)
    return int(fired.sum()), int(ok.sum()), (t - hi)[ok].abs()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", type=wholes(3), default="2001,201,41,11",
                    help="grid_pts values, at least 3 as exact-snn-nn requires (2001 = the library's default)")
    ap.add_argument("--markdown", type=output_file, help="write the table here (also printed)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = latency_encode(torch.rand(784, 16), t_max=40.0)
    rows = ["| case | grid points (spacing) | dtype | fired | bracketed | median abs(t_lib - t_root) "
            "| max abs(t_lib - t_root) |", "|---|---|---|---|---|---|---|"]
    for grid in args.grids:
        one = ExactTTFSLinear(1, 1, grid_pts=grid, dtype=torch.float64)
        with torch.no_grad():
            one.weight.copy_(torch.tensor([[1.0005, 0.0]], dtype=torch.float64))
        cases = [("one input, peak 1.0005", one, torch.zeros(1, 1, dtype=torch.float64), "float64")]
        for dtype in (torch.float32, torch.float64):
            layer = ExactTTFSLinear(784, 100, grid_pts=grid, dtype=dtype)
            cases.append(("784 -> 100, 16 random inputs", layer, x.to(dtype), str(dtype).split(".")[1]))
        for name, layer, t_in, dt in cases:
            fired, ok, err = time_error(layer, t_in)
            med, top = (f"{err.median():.2e}", f"{err.max():.2e}") if ok else ("n/a", "n/a")
            rows.append(f"| {name} | {grid} ({40 / (grid - 1):g}) | {dt} | {fired}/{t_in.shape[1] * layer.n_out} "
                        f"| {ok} | {med} | {top} |")
    text = "\n".join(rows)
    print(text)
    if args.markdown:
        write_result(ap, args.markdown, text + "\n")


if __name__ == "__main__":
    main()
