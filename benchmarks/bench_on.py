"""The Open Neuromorphic SNN-library benchmark (one Linear + LIF, batch 16, T = 500), forward + backward and
inference: deepspike vs snnTorch, SpikingJelly, Norse (plain and compiled) and Spyx.

The nets and where their LIFs differ: ``peers/on_nets.py``. Every case runs in a fresh subprocess (a peer's
interpreter can be chosen with ``--python-for FRAMEWORK=PATH``; default: the bench venv made by
``peers/setup.sh``, else this interpreter). A case builds its net (``torch.manual_seed(0)``, the same
weights everywhere), an input ``x = randn(T, B, N)`` without gradient, then measures

* training step: zero the gradients, forward, ``spikes.sum()``, backward (the weight and bias gradients):
  median of ``--steps`` steps after ``--warmup`` steps (the warm-up also compiles: numba, torch.compile, XLA);
  Spyx: one ``jit(grad(sum of spikes))`` call;
* inference: forward under ``torch.no_grad`` (Spyx: the jitted forward), median after warm-up;
* peak memory of two training steps and two inference calls, each pair above its start or a lower RSS between
  or after the calls (the input, the weights and the libraries' caches are not counted; memory a library keeps
  from one call to the next and frees in the next is), measured in a second fresh process after a warm-up call:
  on CPU the process's peak RSS (``VmHWM`` reset through ``/proc/self/clear_refs``) minus the RSS at that
  moment, with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns every freed block of 64 KiB or more at once
  (by default its threshold grows up to 32 MiB and freed tensors stay in the heap, hiding what a step needs),
  for Spyx at least the temporaries and outputs that XLA's compiled programs allocate (``memory_analysis``:
  XLA keeps those buffers between calls, where the RSS does not see them); on CUDA
  ``torch.cuda.max_memory_allocated`` minus the allocated bytes at the start. The timing process runs with the
  default allocator.

A framework that is not installed gives a row saying so. Ratios in the table: each framework's time over the
fastest peer's time (peers = every framework but deepspike), and its memory over that same peer's memory.
``--dtype`` casts the Linear and the input for every framework (deepspike's neuron keeps a float32 state; see
``on_nets``). Run: ``python benchmarks/bench_on.py [--neurons 4096] [--timesteps 500] [--batch 16]
[--frameworks ...] [--device cpu|cuda] [--dtype float32|float16|bfloat16] [--steps N] [--warmup N]
[--python-for FRAMEWORK=PATH ...] [--markdown [FILE]]``.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "peers"))

import bench_rate  # noqa: E402
from bench_rate import DEFAULT_PEER_PYTHON, _cpu, _fmt, _median_ms, _reset_peak, _status_kb, _versions  # noqa: E402
from cli_checks import names, output_file, seconds, whole, write_result  # noqa: E402

FRAMEWORKS = ("deepspike", "snntorch", "spikingjelly", "norse", "norse_compile", "spyx")
MODULES = {"deepspike": "deepspike", "snntorch": "snntorch", "spikingjelly": "spikingjelly", "norse": "norse",
           "norse_compile": "norse", "spyx": "spyx"}


# ----------------------------------------------------------------------------- one case (child process)
class _Memory:
    """Peak memory above a start point: RSS on CPU, the CUDA caching allocator's counters on CUDA."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"

    def start(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.ok = _reset_peak()
            self.base = _status_kb("VmRSS") * 1024

    def note(self) -> None:
        """Lower the base to the RSS now if it is lower: memory a library kept from the call before the start
        and freed during the measured calls (XLA does) counts as the step's."""
        if not self.cuda:
            self.base = min(self.base, _status_kb("VmRSS") * 1024)

    def peak_mb(self) -> float:
        if self.cuda:
            import torch

            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        return (_status_kb("VmHWM") * 1024 - self.base) / 2**20 if self.ok else float("nan")


def _timings(train, infer, warmup: int, steps: int) -> dict:
    """Median ms of ``train()`` and ``infer()``, each after ``warmup`` calls."""
    return {"train_ms": _median_ms(train, warmup, steps), "infer_ms": _median_ms(infer, max(1, warmup), steps)}


def _peaks(train, infer, release, device: str) -> dict:
    """Peak MB of two ``train()`` and two ``infer()`` calls above their start (or above a lower RSS between or after
    them, ``_Memory.note``), each pair after a warm-up call and after ``release()`` dropped the gradients of the
    call before (so the weight gradient counts for every library)."""
    mem, peaks = _Memory(device), {}
    for key, fn in (("peak_train_mb", train), ("peak_infer_mb", infer)):
        fn()
        release()
        mem.start()
        for _ in range(2):
            fn()
            release()
            mem.note()
        peaks[key] = mem.peak_mb()
    return peaks


def _torch_case(framework: str, n: int, t: int, b: int, device: str, dtype: str) -> tuple:
    """``(train, infer, release)`` closures of a torch framework's net on one random input."""
    import on_nets
    import torch

    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    model = on_nets.build(framework, n).to(device)
    linear = model.fc if hasattr(model, "fc") else model.body[0]  # SpikingJelly: body = [Linear, LIFNode]
    linear.to(dt)
    x = torch.randn(t, b, n, device=device).to(dt)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def train():
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        sync()

    def infer():
        with torch.no_grad():
            model(x)
        sync()

    return train, infer, lambda: model.zero_grad(set_to_none=True)


def _spyx_case(n: int, t: int, b: int, dtype: str) -> tuple:
    """``(train, infer, release, planned)`` of the Spyx net (JAX on its default backend) with the torch Linear's
    weights: closures as ``_torch_case``'s, and ``planned``, the MB that XLA's compiled train and infer programs
    allocate for their temporaries and outputs (``memory_analysis``; XLA keeps such buffers from call to call, so
    the RSS above the start of a call can miss them)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import on_nets
    import torch

    torch.manual_seed(0)
    fc = torch.nn.Linear(n, n)
    params, train_fn, infer_fn = on_nets.spyx_functions(fc.weight.detach().numpy(), fc.bias.detach().numpy(), dtype)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((t, b, n), dtype=np.float32), dtype=jnp.dtype(dtype))
    planned = {}
    for key, fn in (("peak_train_mb", train_fn), ("peak_infer_mb", infer_fn)):
        m = fn.lower(params, x).compile().memory_analysis()
        planned[key] = (m.temp_size_in_bytes + m.output_size_in_bytes) / 2**20 if m is not None else 0.0
    return (lambda: jax.block_until_ready(train_fn(params, x))), (lambda: jax.block_until_ready(infer_fn(params, x))), (
        lambda: None), planned  # release: the gradients are results of train_fn, dropped at once


def run_case(framework: str, args) -> dict:
    """Measure one framework in this process (module docstring); returns the numbers as a dict."""
    import importlib
    import importlib.metadata

    if framework == "spyx" and args.threads == 1:  # XLA's CPU thread pool: one thread, as torch gets
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    try:
        importlib.import_module(MODULES[framework])
    except ImportError:
        return {"framework": framework, "error": "not installed"}
    libs = ("spyx", "flax", "jax") if framework == "spyx" else (MODULES[framework], "torch")
    version = ", ".join(f"{lib} {importlib.metadata.version(lib)}" for lib in libs)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    if framework == "spyx":
        import jax

        if (jax.default_backend() == "cpu") != (args.device == "cpu"):
            return {"framework": framework, "version": version, "error": f"jax runs on {jax.default_backend()} here"}
        train, infer, release, planned = _spyx_case(args.neurons, args.timesteps, args.batch, args.dtype)
    else:
        train, infer, release = _torch_case(framework, args.neurons, args.timesteps, args.batch, args.device,
                                            args.dtype)
        planned = {}
    t0 = time.perf_counter()
    train()  # first call: compilation (numba cache, torch.compile, XLA), reported separately
    row = {"framework": framework, "version": version, "first_step_s": time.perf_counter() - t0}
    if args.phase == "memory":
        peaks = _peaks(train, infer, release, args.device)
        row.update({k: max(v, planned.get(k, 0.0)) for k, v in peaks.items()})  # Spyx: at least what XLA plans
    else:
        row.update(_timings(train, infer, args.warmup, args.steps))
    return row


# ----------------------------------------------------------------------------- the table (parent process)
def _spawn(python: str, framework: str, args, env: dict, phase: str) -> dict:
    """One case in a fresh process: its timings (``phase="time"``) or its peak memory (``"memory"``)."""
    cmd = [python, str(Path(__file__).resolve()), "--case", framework, "--phase", phase, "--neurons",
           str(args.neurons), "--timesteps", str(args.timesteps), "--batch", str(args.batch), "--device",
           args.device, "--dtype", args.dtype, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads)]
    if phase == "memory":
        env = dict(env, MALLOC_MMAP_THRESHOLD_="65536")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.case_timeout)
    except subprocess.TimeoutExpired:
        return {"framework": framework, "error": f"timeout after {args.case_timeout:.0f} s"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return {"framework": framework, "error": tail[:200]}
    return json.loads(lines[-1])


def _ratio(a: float, b: float | None) -> str:
    return "n/a" if b is None or b != b or b == 0 else f"{a / b:.2f}"


def markdown(rows: list[dict], header: str) -> str:
    """The table: per framework, training and inference ms and peak MB, each with its ratio to the fastest peer
    of that phase (time) and to that peer's peak memory."""
    ok = [r for r in rows if "error" not in r and r["framework"] != "deepspike"]
    best = {m: min(ok, key=lambda r: r[m]) if ok else None for m in ("train_ms", "infer_ms")}
    out = [header, ""]
    for phase, mem in (("train", "peak_train_mb"), ("infer", "peak_infer_mb")):
        ref = best[f"{phase}_ms"]
        name = "forward + backward" if phase == "train" else "inference (no grad)"
        out += [f"**{name}**; fastest peer: {ref['framework'] if ref else 'none'}", "",
                "| framework | ms | / fastest peer | peak MB above start | / that peer's MB |", "|---|---|---|---|---|"]
        for r in rows:
            if "error" in r:
                out.append(f"| {r['framework']} | {r['error']} | | | |")
                continue
            ms, mb = r[f"{phase}_ms"], r[mem]
            out.append(f"| {r['framework']} | {_fmt(ms)} | {_ratio(ms, ref and ref[f'{phase}_ms'])} | {_fmt(mb, '.0f')}"
                       f" | {_ratio(mb, ref and ref[mem])} |")
        out.append("")
    return "\n".join(out)


def python_for(text: str) -> tuple[str, str]:
    """An argparse ``type``: ``--python-for FRAMEWORK=PATH`` as ``(framework, path)``, the path an executable file."""
    framework, _, path = text.partition("=")
    if framework not in FRAMEWORKS or not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise argparse.ArgumentTypeError(f"{text!r} is not FRAMEWORK=PATH with FRAMEWORK one of {', '.join(FRAMEWORKS)}"
                                         " and PATH an executable file")
    return framework, path


def _pythons(args) -> dict[str, str]:
    """The interpreter of every framework: ``--python-for`` entries, else the bench venv, else this one."""
    default = str(DEFAULT_PEER_PYTHON) if DEFAULT_PEER_PYTHON.exists() else sys.executable
    chosen = dict(args.python_for)
    return {fw: chosen.get(fw, default) for fw in FRAMEWORKS}


def _header(args, pythons: dict[str, str], frameworks: list[str], rows: list[dict]) -> str:
    load = os.getloadavg()
    versions = [_versions(pythons[frameworks[0]])]
    versions += [f"{r['framework']}: {r['version']}" for r in rows if "version" in r]
    return "\n".join([
        f"### Open Neuromorphic benchmark: Linear({args.neurons}, {args.neurons}) + LIF, T = {args.timesteps}, "
        f"batch {args.batch}, {args.dtype}, {args.device}",
        "",
        f"Machine: {_cpu()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; load average at the "
        f"end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; torch threads {args.threads or 'default'}.",
        f"Versions: {'; '.join(versions)}; python {platform.python_version()}.",
        f"Medians of {args.steps} steps after {args.warmup} warm-up steps (plus one first, compiling step); each "
        "framework in a fresh process; peak memory of two steps above their start, in another fresh process (CPU: RSS "
        "with glibc returning every freed block >= 64 KiB; CUDA: allocated bytes).",
        f"Command: `{bench_rate.command_line()}`",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)  # one framework, run in this process
    ap.add_argument("--phase", choices=("time", "memory"), default="time", help=argparse.SUPPRESS)
    ap.add_argument("--neurons", type=whole(1), default=4096)
    ap.add_argument("--timesteps", type=whole(1), default=500)
    ap.add_argument("--batch", type=whole(1), default=16)
    ap.add_argument("--frameworks", type=names(FRAMEWORKS), default=",".join(FRAMEWORKS))
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    ap.add_argument("--steps", type=whole(1), default=5)
    ap.add_argument("--warmup", type=whole(0), default=1)
    ap.add_argument("--threads", type=whole(0), default=0, help="torch threads per case (0: torch's default)")
    ap.add_argument("--python-for", action="append", type=python_for, default=[], metavar="FRAMEWORK=PATH",
                    help="interpreter for one framework (repeatable)")
    ap.add_argument("--case-timeout", type=seconds, default=3600.0)
    ap.add_argument("--json", type=output_file, help="write the rows here")
    ap.add_argument("--markdown", nargs="?", const="-", type=output_file,
                    help="print the markdown table (and write it to FILE)")
    args = ap.parse_args()

    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return
    frameworks = args.frameworks
    pythons = _pythons(args)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent / "src"), env.get("PYTHONPATH")) if p)
    if args.device == "cpu":
        env.setdefault("JAX_PLATFORMS", "cpu")
    rows = []
    for fw in frameworks:
        row = _spawn(pythons[fw], fw, args, env, "time")
        if "error" not in row:
            memory = _spawn(pythons[fw], fw, args, env, "memory")
            row.update({k: v for k, v in memory.items() if k.startswith("peak") or k == "error"})
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        write_result(ap, args.json, json.dumps(rows, indent=1) + "\n")
    text = markdown(rows, _header(args, pythons, frameworks, rows))
    if args.markdown:
        print(text)
        if str(args.markdown) != "-":  # argparse runs the type on const too: "-" comes back as Path("-")
            write_result(ap, args.markdown, text + "\n")


if __name__ == "__main__":
    main()
