"""TTFS against a TTFS library: deepspike's closed-form ``ttfs`` (zhou2021) vs exact-snn-nn's ``ExactTTFSLinear``.

The same work in both: a 784-800-10 single-spike (time-to-first-spike) MLP on Fashion-MNIST (deepspike's
loader, ``data.name=fashion_mnist``, pixels ``p`` in [0, 1]), batch ``--batch`` (128), each framework with its
own neuron model, input code, loss and recommended optimizer:

* ``ttfs`` (deepspike, zhou2021): non-leaky IF neurons, exponentially decaying synaptic current (tau = theta
  = 1), bias spike at t = 0; spike times in closed form. Model ``zhang2021_fc800`` (Flatten, 800, 10), the
  method's defaults (= ``configs/ttfs_fmnist_conv.yaml``: code ``t = 3 (1 - p)``, loss ``zhou_code``,
  weight-sum cost 100, L2 1e-3, row-normalised gradient clip 10), Adam lr 5e-4 (that recipe's lr).
* ``stdbp`` (deepspike, zhang2021, optional): ReL-PSP neurons, ``configs/stdbp_mnist_fc800.yaml``'s
  options (weight-sum cost 10, jitter 0.14) and Adam lr 2e-4.
* ``exact_snn`` (exact-snn-nn): ``ExactTTFSNetwork([784, 800, 10])`` with the library's defaults (LIF with
  double-exponential PSP, tau_m 15, tau_s 4, theta 1, t_max 40, grid of 2001 points, bias weight 1.5),
  ``calibrate_init_fire()`` once after construction (its README), code ``latency_encode`` (t = 40 (1 - p) +
  0.1, p clamped to [0.01, 0.99]), loss ``latency_cross_entropy`` (softmax over -t), Adam lr 2e-3 (the lr
  of its docstring and ``train_simple``).

Both: constant learning rate, no schedule; prediction = the output neuron that fires first (no output spike
= wrong; ``deepspike.coding.decoders.first_spike_class``).

(a) ``--part timing``: one fixed batch (the first ``--batch`` training images), a training step = zero_grad,
forward, loss (+ deepspike's penalty), backward (+ deepspike's gradient clip), Adam step; median of
``--steps`` steps after ``--warmup``; peak RSS above the start (VmHWM reset after a one-sample step, as in
``bench_rate.py``, and after ``malloc_trim`` has handed the data loader's freed memory back).
(b) ``--part accuracy``: ``--epochs`` epochs over the first ``--train-limit`` training
images (0 = all 60,000) in the same seeded order for every framework, then the test accuracy on the first
``--test-limit`` test images (0 = all 10,000); wall times per epoch and for the test pass.
Each (framework, part) runs in a fresh subprocess of ``--peer-python`` (exact-snn-nn lives only there).

Run: ``python benchmarks/bench_ttfs_peer.py --peer-python .bench-venv/bin/python [--part timing,accuracy]
[--frameworks ttfs,exact_snn] [--steps 5] [--warmup 1] [--epochs 1] [--threads 1] [--json out.json]
[--markdown out.md]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rate import (  # noqa: E402 (the shared helpers of the rate benchmark)
    DEFAULT_PEER_PYTHON,
    ROOT,
    TUNED_MALLOC,
    _cpu,
    _fmt,
    _median_ms,
    _reset_peak,
    _status_kb,
    _versions,
    command_line,
)
from cli_checks import names, output_file, seconds, whole, write_result  # noqa: E402

FRAMEWORKS = ("ttfs", "stdbp", "exact_snn")
# deepspike's options and Adam lr per method: the Fashion-MNIST ttfs recipe and the 784-800-10 stdbp recipe.
DEEPSPIKE_RECIPES = {"ttfs": ({}, 5e-4), "stdbp": ({"weight_sum_cost": 10.0}, 2e-4)}
EXACT_LR = 2e-3


# ----------------------------------------------------------------------------- the nets (child process)
def _deepspike_net(name: str):
    """(model, train_step(x, y) -> loss, predict(x) -> classes [B]) of deepspike method ``name``."""
    import torch

    from deepspike.methods import get_method
    from deepspike.models import create_architecture

    options, lr = DEEPSPIKE_RECIPES[name]
    arch = create_architecture("zhang2021_fc800", num_classes=10, input_shape=(1, 28, 28), width=1.0)
    method = get_method(name, dict(options, measures=False))
    model = method.build(arch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def train_step(x, y):
        model.train()
        opt.zero_grad(set_to_none=True)
        penalty = method.penalty(model)
        loss = method.loss(model(x), y) + (penalty if penalty is not None else 0.0)
        loss.backward()
        method.after_backward(model)
        opt.step()
        return float(loss.detach())

    def predict(x):
        model.eval()
        with torch.no_grad():
            return method.predict(model(x))

    return model, train_step, predict


def _exact_net():
    """(model, train_step, predict) of exact-snn-nn's 784-800-10 ``ExactTTFSNetwork`` with its defaults."""
    import torch
    from exact_snn import ExactTTFSNetwork, latency_encode

    from deepspike.coding.decoders import first_spike_class

    model = ExactTTFSNetwork([784, 800, 10])
    model.calibrate_init_fire()
    opt = torch.optim.Adam(model.parameters(), lr=EXACT_LR)

    def encode(x):  # [B, 1, 28, 28] pixels -> [784, B] spike times
        return latency_encode(x.flatten(1).T.contiguous(), t_max=model.t_max)

    def train_step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = model.loss(encode(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def predict(x):
        with torch.no_grad():
            return first_spike_class(model(encode(x)).T)

    return model, train_step, predict


def build(framework: str, threads: int):
    """Seeded (torch.manual_seed(0)) net of ``framework`` on ``threads`` torch threads (0: default)."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    return _exact_net() if framework == "exact_snn" else _deepspike_net(framework)


def _splits(train_limit: int, test_limit: int):
    from deepspike.data import load_dataset

    data = load_dataset("fashion_mnist")
    tr, te = data.train, data.test
    n_tr = train_limit or len(tr.y)
    n_te = test_limit or len(te.y)
    return tr.x[:n_tr], tr.y[:n_tr], te.x[:n_te], te.y[:n_te]


def _trim_heap() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``), so that memory the data loader freed is
    not silently reused by the timed steps (with ``MALLOC_TRIM_THRESHOLD_`` large it would stay resident and
    hide the steps' peak); a no-op where glibc is missing."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def run_timing(framework: str, batch: int, warmup: int, steps: int, threads: int) -> dict:
    """Median training-step ms and peak training memory (module docstring, part a) in this process."""
    import torch

    x, y, _, _ = _splits(batch, 1)
    x, y = x.clone(), y.clone()  # the batch alone; the data set's memory is freed and handed back below
    _, train_step, _ = build(framework, threads)
    train_step(x[:1], y[:1])  # lazy init (kernels, numba) is not "memory"
    _trim_heap()
    peak_ok = _reset_peak()
    start_kb = _status_kb("VmRSS")
    losses = []
    train_ms = _median_ms(lambda: losses.append(train_step(x, y)), warmup, steps)
    peak_mb = (_status_kb("VmHWM") - start_kb) / 1024 if peak_ok else float("nan")
    return {"part": "timing", "framework": framework, "batch": batch, "train_ms": train_ms,
            "peak_train_mb": peak_mb, "last_loss": losses[-1], "threads": torch.get_num_threads()}


def run_accuracy(framework: str, batch: int, epochs: int, train_limit: int, test_limit: int, threads: int) -> dict:
    """Test accuracy after ``epochs`` epochs (module docstring, part b) in this process."""
    import torch

    x, y, xt, yt = _splits(train_limit, test_limit)
    _, train_step, predict = build(framework, threads)
    epoch_s, losses = [], []
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
        t0, total = time.perf_counter(), 0.0
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            total += train_step(x[idx], y[idx]) * len(idx)
        epoch_s.append(time.perf_counter() - t0)
        losses.append(total / len(y))
        print(f"{framework} epoch {epoch + 1}: loss {losses[-1]:.4f}, {epoch_s[-1]:.0f} s", file=sys.stderr, flush=True)
    t0, correct = time.perf_counter(), 0
    for i in range(0, len(yt), batch):
        correct += int((predict(xt[i:i + batch]) == yt[i:i + batch]).sum())
    return {"part": "accuracy", "framework": framework, "batch": batch, "epochs": epochs, "train_n": len(y),
            "test_n": len(yt), "test_accuracy": correct / len(yt), "train_loss": losses, "epoch_s": epoch_s,
            "test_s": time.perf_counter() - t0, "threads": torch.get_num_threads()}


# ----------------------------------------------------------------------------- the table (parent process)
def _spawn(python: str, args, part: str, framework: str, env: dict) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--case", f"{part}:{framework}", "--batch", str(args.batch),
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--epochs", str(args.epochs),
           "--train-limit", str(args.train_limit), "--test-limit", str(args.test_limit),
           "--threads", str(args.threads)]
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env, timeout=args.case_timeout)
    except subprocess.TimeoutExpired:  # one row says so; the cases before and after are kept
        return {"part": part, "framework": framework, "error": f"timeout after {args.case_timeout:g} s"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        return {"part": part, "framework": framework, "error": f"exit {res.returncode}, no result"}
    return json.loads(lines[-1])


def _ratio(rows: list[dict], key: str, num: str, den: str, spec: str) -> str:
    by = {r["framework"]: r for r in rows if key in r}
    return _fmt(by[num][key] / by[den][key], spec) + "x" if num in by and den in by else "n/a"


def markdown(rows: list[dict], header: str) -> str:
    """The timing table, the accuracy table and the exact_snn / ttfs ratios."""
    out = [header, ""]
    timing = [r for r in rows if r["part"] == "timing"]
    if timing:
        out += ["| framework | train step ms | peak train MB above start | last loss |", "|---|---|---|---|"]
        out += [f"| {r['framework']} | error: {r['error']} | | |" if "error" in r else
                f"| {r['framework']} | {_fmt(r['train_ms'])} | {_fmt(r['peak_train_mb'], '.0f')} "
                f"| {_fmt(r['last_loss'], '.3f')} |" for r in timing]
        out += ["", f"Step time exact_snn / ttfs: {_ratio(timing, 'train_ms', 'exact_snn', 'ttfs', '.0f')}; "
                f"peak memory exact_snn / ttfs: {_ratio(timing, 'peak_train_mb', 'exact_snn', 'ttfs', '.0f')}.", ""]
    acc = [r for r in rows if r["part"] == "accuracy"]
    if acc:
        out += ["| framework | epochs | train images | test images | test accuracy | train loss per epoch "
                "| s per epoch | test pass s |", "|---|---|---|---|---|---|---|---|"]
        out += [f"| {r['framework']} | error: {r['error']} | | | | | | |" if "error" in r else
                f"| {r['framework']} | {r['epochs']} | {r['train_n']} | {r['test_n']} "
                f"| {100 * r['test_accuracy']:.2f}% | {', '.join(_fmt(v, '.3f') for v in r['train_loss'])} "
                f"| {', '.join(_fmt(v, '.0f') for v in r['epoch_s'])} | {_fmt(r['test_s'], '.0f')} |" for r in acc]
        out += ["", f"Training wall time exact_snn / ttfs: {_epoch_ratio(acc)}.", ""]
    return "\n".join(out)


def _epoch_ratio(acc: list[dict]) -> str:
    by = {r["framework"]: sum(r["epoch_s"]) for r in acc if "epoch_s" in r}
    return _fmt(by["exact_snn"] / by["ttfs"], ".0f") + "x" if {"exact_snn", "ttfs"} <= by.keys() else "n/a"


def _header(args, python: str) -> str:
    load = os.getloadavg()
    exact = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('exact-snn-nn'))"],
                           capture_output=True, text=True).stdout.strip() or "not installed"
    return "\n".join([
        f"Machine: {_cpu()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}.",
        f"Versions: {_versions(python)}, exact-snn-nn {exact}; python {platform.python_version()}.",
        f"Net 784-800-10, batch {args.batch}, torch threads {args.threads or 'default'}, allocator "
        f"MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2^40; each (framework, part) in a fresh process. Timing: "
        f"median of {args.steps} steps after {args.warmup} warm-up steps on the first training batch. Accuracy: "
        f"{args.epochs} epoch(s) on the first {args.train_limit or 'all'} training images, test on the first "
        f"{args.test_limit or 'all'} test images. Optimizers: ttfs Adam 5e-4, stdbp Adam 2e-4, exact_snn Adam "
        f"2e-3 (constant).",
        f"Command: `{command_line()}`",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)  # part:framework, run in this process
    ap.add_argument("--part", type=names(("timing", "accuracy")), default="timing,accuracy")
    ap.add_argument("--frameworks", type=names(FRAMEWORKS), default="ttfs,exact_snn", help=f"of {','.join(FRAMEWORKS)}")
    ap.add_argument("--batch", type=whole(1), default=128)
    ap.add_argument("--warmup", type=whole(0), default=1)
    ap.add_argument("--steps", type=whole(1), default=5)
    ap.add_argument("--epochs", type=whole(1), default=1)
    ap.add_argument("--train-limit", type=whole(0), default=0, help="first N training images (0: all 60,000)")
    ap.add_argument("--test-limit", type=whole(0), default=0, help="first N test images (0: all 10,000)")
    ap.add_argument("--threads", type=whole(0), default=1, help="torch threads per case (0: torch's default)")
    ap.add_argument("--peer-python", default=str(DEFAULT_PEER_PYTHON))
    ap.add_argument("--case-timeout", type=seconds, default=86400.0)
    ap.add_argument("--json", type=output_file, help="write all rows here")
    ap.add_argument("--markdown", type=output_file, help="write the tables here (also printed)")
    args = ap.parse_args()
    if args.case:
        part, fw = args.case.split(":")
        row = (run_timing(fw, args.batch, args.warmup, args.steps, args.threads) if part == "timing" else
               run_accuracy(fw, args.batch, args.epochs, args.train_limit, args.test_limit, args.threads))
        print(json.dumps(row))
        return
    python = args.peer_python if Path(args.peer_python).exists() else sys.executable
    env = dict(os.environ, **TUNED_MALLOC)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    rows = []
    for part in args.part:
        for fw in args.frameworks:
            rows.append(_spawn(python, args, part, fw, env))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            if args.json:  # after every case, atomically: a long accuracy run keeps what it has, even if killed
                write_result(ap, args.json, json.dumps(rows, indent=1) + "\n")
    text = markdown(rows, _header(args, python))
    print(text)
    if args.markdown:
        write_result(ap, args.markdown, text + "\n")


if __name__ == "__main__":
    main()
