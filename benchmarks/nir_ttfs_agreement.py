"""Agreement of a trained TTFS net's NIR export, simulated step by step, with its closed-form spike times.

Loads a run (default ``runs/stdbp_fmnist_fc1000_e12``), exports it with ``to_nir_ttfs`` (defaults: large 1e6,
t_window 100), codes the first ``--images`` test images into input spike times (the run's encoder, eval mode,
no jitter), and compares the output first-spike times of the closed form (``model.body`` in float64) with
those of ``ttfs_graph_times`` (``nir_sim.GraphSimulator``, reading only the graph) for each ``--dt``.
Reported: max and mean |t_nir - t_closed| over output neurons that fire in both, how many outputs fire in
only one of them, and the fraction of images whose predicted class (earliest output spike) agrees.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/nir_ttfs_agreement.py``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from deepspike.coding.decoders import first_spike_class
from deepspike.deploy import to_nir_ttfs, ttfs_graph_times
from deepspike.training.reload import load_run
from deepspike.training.run_setup import make_batches


def _test_images(config, parts, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys, have = [], [], 0
    for batch in make_batches(config, parts.data, "test", torch.device("cpu")):
        x, y = batch[0], batch[1]
        xs.append(x)
        ys.append(y)
        have += x.shape[0]
        if have >= n:
            break
    return torch.cat(xs)[:n], torch.cat(ys)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", default="runs/stdbp_fmnist_fc1000_e12")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--dt", type=float, nargs="+", default=[1e-2, 1e-3])
    ap.add_argument("--batch", type=int, default=100, help="images simulated together")
    args = ap.parse_args()

    config, parts, _ = load_run(args.run, device="cpu")
    model = parts.model.eval()
    x, y = _test_images(config, parts, args.images)
    graph = to_nir_ttfs(model, tuple(parts.arch.input_shape))
    with torch.no_grad():
        t_in = model.encoder(x).double()
        closed = model.body.double()(t_in)  # [N, K] closed-form output spike times
    t_end = float(closed[torch.isfinite(closed)].max()) + 1.0
    results = {"run": args.run, "images": int(x.shape[0]), "t_end": round(t_end, 4),
               "closed_accuracy": float((first_spike_class(closed) == y).float().mean())}
    for dt in args.dt:
        t0 = time.perf_counter()
        t_nir = torch.cat([ttfs_graph_times(graph, t_in[i:i + args.batch], dt, t_end)
                           for i in range(0, t_in.shape[0], args.batch)])
        both = torch.isfinite(t_nir) & torch.isfinite(closed)
        err = (t_nir - closed)[both].abs()
        results[f"dt={dt:g}"] = {
            "max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
            "outputs_compared": int(both.sum()),
            "fire_in_one_only": int((torch.isfinite(t_nir) != torch.isfinite(closed)).sum()),
            "class_agreement": float((first_spike_class(t_nir) == first_spike_class(closed)).float().mean()),
            "nir_accuracy": float((first_spike_class(t_nir) == y).float().mean()),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(results, indent=2), flush=True)


if __name__ == "__main__":
    main()
