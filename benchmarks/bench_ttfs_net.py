"""TTFS at network scale (issue 4's "Show"): a training step of zhang2021's conv net against the same-shape ANN,
and the peak memory of one TTFS conv layer against the ANN conv layer.

* step: ``stdbp`` on ``zhang2021_conv`` (28x28-16C5-P2-32C5-P2-800-128-10) vs method ``ann`` on the same
  architecture; batch 32, Adam, ``--steps`` steps after 2 warm-up steps each, all in one process, the ANN
  measured before and after the TTFS net (its median over both runs), the TTFS net's median in between.
* memory: forward + backward of ``spike_times_conv2d`` (B = 128, 64 -> 64 channels, 32x32, 3x3, padding 1,
  both kernels) vs ``conv2d + relu``, each in a fresh process: peak RSS (VmHWM, reset via
  ``/proc/self/clear_refs`` after the inputs exist and one warm-up pass) minus the RSS at that moment.

Run: ``.venv/bin/python benchmarks/bench_ttfs_net.py [--steps 20] [--threads 1]`` on an idle machine;
``--profile`` instead prints a ``torch.profiler`` table of 7 ``stdbp`` steps (where the time goes).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rate import _reset_peak, _status_kb  # noqa: E402 (the /proc/self helpers of the rate benchmark)


def _step_times(method, model, x, y, steps: int) -> list[float]:
    """Seconds of ``steps`` training steps (Adam) of ``model`` under ``method`` after 2 warm-up steps."""
    import torch

    opt = torch.optim.Adam(model.parameters(), 1e-3)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        opt.zero_grad()
        penalty = method.penalty(model)
        loss = method.loss(model(x), y) + (penalty if penalty is not None else 0.0)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return times


STDBP_OPTIONS = {"alpha": 3.0, "jitter": 0.14, "weight_sum_cost": 10.0}


def _net_and_batch():
    import torch

    from deepspike.models import create_architecture

    arch = create_architecture("zhang2021_conv", num_classes=10, input_shape=(1, 28, 28), width=1.0)
    return arch, torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))


def step_ratio(steps: int) -> tuple[float, float]:
    """Median training-step seconds of (ANN, stdbp) on zhang2021_conv, batch 32."""
    import torch

    from deepspike.methods import get_method

    arch, x, y = _net_and_batch()
    times = {"ann": [], "stdbp": []}
    for name, opts in (("ann", {}), ("stdbp", STDBP_OPTIONS), ("ann", {})):
        torch.manual_seed(0)
        method = get_method(name, opts)
        times[name] += _step_times(method, method.build(arch), x, y, steps)
    return statistics.median(times["ann"]), statistics.median(times["stdbp"])


def profile_table(steps: int = 5) -> str:
    """``torch.profiler`` table (self CPU time) of ``steps + 2`` stdbp training steps after 2 unprofiled ones."""
    import torch
    from torch.profiler import profile

    from deepspike.methods import get_method

    arch, x, y = _net_and_batch()
    torch.manual_seed(0)
    method = get_method("stdbp", STDBP_OPTIONS)
    model = method.build(arch)
    _step_times(method, model, x, y, 0)
    with profile() as prof:
        _step_times(method, model, x, y, steps)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)


def layer_memory(case: str) -> float:
    """MB above the start for one forward + backward of ``case`` (``ann``, ``exp``, ``relpsp``)."""
    import torch
    import torch.nn.functional as F

    from deepspike.ttfs import spike_times_conv2d

    torch.manual_seed(0)
    t = (torch.rand(128, 64, 32, 32) * 3).requires_grad_()
    w = (torch.rand(64, 64, 3, 3) * 8 / 576).requires_grad_()

    def run():
        out = F.relu(F.conv2d(t, w, padding=1)) if case == "ann" else spike_times_conv2d(
            t, w, padding=1, kernel=case)
        out[torch.isfinite(out)].sum().backward()
        t.grad = w.grad = None

    run()
    if not _reset_peak():
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs)")
    start = _status_kb("VmRSS")
    run()
    return (_status_kb("VmHWM") - start) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--profile", action="store_true", help="print a profiler table of 7 stdbp steps and stop")
    ap.add_argument("--memory-case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_case:
        print(layer_memory(args.memory_case))
        return
    if args.profile:
        print(profile_table())
        return
    ann, ttfs = step_ratio(args.steps)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"zhang2021_conv step, batch 32: ANN {ann * 1e3:.1f} ms, stdbp {ttfs * 1e3:.1f} ms, ratio {ttfs / ann:.1f}")
    base = [sys.executable, __file__, "--threads", str(args.threads)]
    for case in ("ann", "exp", "relpsp"):
        mb = float(subprocess.run([*base, "--memory-case", case], capture_output=True, text=True,
                                  check=True).stdout)
        print(f"conv layer B=128 64->64 32x32 3x3, forward+backward peak above start: {case:7s} {mb:8.1f} MB")


if __name__ == "__main__":
    main()
