"""Eager vs ``train.compile`` (each ``torch.compile`` mode): one training step of three nets on the CPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_compile.py [--nets scnn_digits,fmnist_plif,rsnn_rows]
        [--modes eager,default,reduce-overhead,max-autotune] [--steps 20] [--warmup 3]

Nets (built from their recipes by the method, as ``deepspike train`` builds them; random inputs of the data's shape,
seed 0, so no data set is read):

* ``scnn_digits``: stbp, LIF, T = 8, batch 64, 1x8x8 inputs (the default recipe's net);
* ``fmnist_plif``: ``configs/stbp_fmnist_plif.yaml`` (fang2021_fmnist: {128C3-BN-PLIF-MP2} x 2, FC 2048, PLIF,
  batch-norm, voting), T = 8, batch 16, 1x28x28 inputs;
* ``rsnn_rows``: the rsnn of ``configs/stbp_fmnist_rows_rsnn.yaml`` (one recurrent LIF layer of 128) on digits_rows'
  shape: T = 8 rows of 8 pixels, batch 128.

One step is the Trainer's (``training.loop``): zero_grad, forward, the method's loss (+ penalty), backward, the
method's ``after_backward``, the recipe's optimizer step; the model goes through ``training.compiled.compiled_model``
(what ``train.compile=<mode>`` runs; ``eager``: not compiled), after ``seed_everything`` as a run does. Every
(net, mode) runs in a fresh process with an empty Inductor cache (``TORCHINDUCTOR_CACHE_DIR`` a new temporary
folder): ``first`` is the first step, compilation included, cold; then ``--warmup`` steps; then the median (and min)
of ``--steps`` steps. ``peak MB``: the process's peak RSS over the timed steps above its RSS before them (``VmHWM``
reset through ``/proc/self/clear_refs``). Eager runs first and again last (to expose drift); the ratio is the
mode's median over the mean of the two eager medians (> 1: compiled is slower). torch threads: as set by
``OMP_NUM_THREADS`` (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_rate import _reset_peak, _status_kb, child_error, command_line  # noqa: E402
from cli_checks import names, whole  # noqa: E402

NETS = {  # name: (recipe or None, overrides, the data's input_shape, one sample's shape, batch)
    "scnn_digits": (None, ["method.name=stbp", "method.timesteps=8", "model.name=scnn_digits"], (1, 8, 8), (1, 8, 8),
                    64),
    "fmnist_plif": ("configs/stbp_fmnist_plif.yaml", [], (1, 28, 28), (1, 28, 28), 16),
    "rsnn_rows": ("configs/stbp_fmnist_rows_rsnn.yaml", ["method.timesteps=8"], (8,), (8, 8), 128),
}
CLASSES = 10
MODES = ("eager", "default", "reduce-overhead", "max-autotune")


def run_case(net: str, mode: str, warmup: int, steps: int) -> dict:
    """Measure ``net`` in ``mode`` in this process (module docstring); returns the numbers."""
    import torch

    from deepspike.config import load_config
    from deepspike.training.compiled import compiled_model
    from deepspike.training.optim import make_optimizer
    from deepspike.training.run_setup import method_and_architecture
    from deepspike.training.runtime import seed_everything

    recipe, overrides, input_shape, shape, batch = NETS[net]
    config = load_config(ROOT / recipe if recipe else None, overrides)
    seed_everything(config.train.seed, config.train.deterministic)
    method, arch = method_and_architecture(config, CLASSES, input_shape)
    bare = method.build(arch).train()
    model = bare if mode == "eager" else compiled_model(bare, mode)
    optimizer = make_optimizer(config.optim, bare.parameters())
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, *shape, generator=g), torch.randint(0, CLASSES, (batch,), generator=g)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = method.loss(model(x), y)
        penalty = method.penalty(bare)
        (loss if penalty is None else loss + penalty).backward()
        method.after_backward(bare)
        optimizer.step()

    times = []
    for i in range(1 + warmup + steps):
        if i == 1 + warmup:
            peak_ok, base_kb = _reset_peak(), _status_kb("VmRSS")
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    timed = times[1 + warmup:]
    return {"net": net, "mode": mode, "first_s": times[0], "median_ms": statistics.median(timed) * 1e3,
            "min_ms": min(timed) * 1e3, "peak_mb": (_status_kb("VmHWM") - base_kb) / 1024 if peak_ok else None,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def child(net: str, mode: str, warmup: int, steps: int) -> dict:
    """``run_case`` in a fresh process with an empty Inductor cache; its dict (``error``: the last stderr line)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "PYTHONWARNINGS": "ignore"}
        cmd = [sys.executable, __file__, "--case", f"{net}:{mode}", "--warmup", str(warmup), "--steps", str(steps)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        return {"net": net, "mode": mode, "error": child_error(done)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else the platform's machine type."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.machine()


def table(results: list[dict]) -> list[str]:
    """The printed rows: per net, each mode's first step, median, min, ratio to eager and peak memory."""
    rows = [f"{'net':12s} {'mode':16s} {'first s':>8s} {'median ms':>10s} {'min ms':>9s} {'ratio':>6s} "
            f"{'peak MB':>8s}"]
    for net in dict.fromkeys(r["net"] for r in results):
        mine = [r for r in results if r["net"] == net]
        eager = [r["median_ms"] for r in mine if r["mode"] == "eager" and "error" not in r]
        base = statistics.mean(eager) if eager else float("nan")
        for r in mine:
            if "error" in r:
                rows.append(f"{net:12s} {r['mode']:16s} failed: {r['error'][:200]}")
                continue
            peak = f"{r['peak_mb']:8.1f}" if r["peak_mb"] is not None else f"{'-':>8s}"
            rows.append(f"{net:12s} {r['mode']:16s} {r['first_s']:8.2f} {r['median_ms']:10.2f} {r['min_ms']:9.2f} "
                        f"{r['median_ms'] / base:6.2f} {peak}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", type=names(tuple(NETS)), default=",".join(NETS))
    ap.add_argument("--modes", type=names(MODES), default=",".join(MODES))
    ap.add_argument("--steps", type=whole(1), default=20)
    ap.add_argument("--warmup", type=whole(0), default=3)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # net:mode, in the child process
    a = ap.parse_args()
    if a.case:
        net, mode = a.case.split(":")
        print(json.dumps(run_case(net, mode, a.warmup, a.steps)))
        return
    modes = [m for m in a.modes if m != "eager"]
    results = []
    for net in a.nets:
        for mode in ["eager", *modes, "eager"]:
            results.append(child(net, mode, a.warmup, a.steps))
            print(f"# {net} {mode}: {results[-1]}", file=sys.stderr, flush=True)
    info = next((r for r in results if "threads" in r), {})
    print(f"# {command_line()}")
    print(f"# torch {info.get('torch')}, {info.get('threads')} torch thread(s), {cpu_name()}, {os.cpu_count()} cores; "
          f"{a.warmup} warm-up steps, median of {a.steps}; eager first and last")
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
