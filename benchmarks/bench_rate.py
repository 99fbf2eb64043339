"""Rate-coded training speed and memory: deepspike vs snnTorch vs SpikingJelly vs the same net as an ANN.

For every (net, T) the cases run in this order, each in a fresh subprocess: ANN, deepspike, snnTorch,
SpikingJelly, ANN again (the ANN is measured first and last to expose drift). A case builds the net
(``peers/nets.py``), one random batch (batch 32, seed 0), SGD, then

* training step (zero_grad, forward, cross-entropy, backward, SGD step): ``--warmup`` steps, then the
  median of ``--steps`` steps;
* peak training memory above the start: the process's peak RSS (``VmHWM``, reset through
  ``/proc/self/clear_refs`` once the net and batch exist and one one-sample step has initialised every
  library, e.g. loaded the numba kernels) minus the RSS at that moment;
* minor page faults per timed training step (``getrusage``): the mmap/munmap churn of large tensors;
* inference (eval mode, ``torch.no_grad``): median of ``--steps`` forwards after ``--warmup``.

Ratios: SNN time / (T x ANN time), with the ANN time the mean of its two runs. ``--malloc tuned`` (the
default) runs every case, peers and ANN included, with glibc's ``MALLOC_MMAP_MAX_=0`` and a large
``MALLOC_TRIM_THRESHOLD_``, so freed [T*B] buffers are reused instead of unmapped and faulted in again;
``--malloc default`` leaves the allocator alone.

Peers run with ``--peer-python`` (default ``.bench-venv/bin/python``, made by ``peers/setup.sh``); without
it they are skipped. Run: ``python benchmarks/bench_rate.py [--rounds 3] [--configs lenet:25,lenet:100,vgg:4,vgg:8]
[--frameworks ann,deepspike,snntorch,spikingjelly] [--steps 10] [--json out.json] [--markdown out.md]``.
``--configs`` takes ``net:T`` pairs of any ``peers/nets.py`` net (e.g. ``vgg11:8``, ``sew_resnet18_plif:4``) or a
preset name from ``PRESETS``: ``default`` (lenet and the 3-conv vgg), ``deep`` (VGG-11 and SEW-ResNet-18 at T = 4
and 8, issue 26) and ``plif`` (the same with PLIF neurons, issue 22). ``--memory-format channels_last`` and
``--precision bf16`` (CPU bfloat16 autocast of the forward and the loss) apply to every framework and the ANN alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from cli_checks import names, output_file, seconds, whole, write_result  # noqa: E402

DEFAULT_PEER_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
PEERS = ("snntorch", "spikingjelly")
TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}
PRESETS = {
    "default": "lenet:25,lenet:100,vgg:4,vgg:8",
    "deep": "vgg11:4,vgg11:8,sew_resnet18:4,sew_resnet18:8",
    "plif": "vgg11_plif:4,vgg11_plif:8,sew_resnet18_plif:4,sew_resnet18_plif:8",
}
ALLOCATOR_TEXT = {"tuned": "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2^40", "default": "glibc default"}


# ----------------------------------------------------------------------------- one case (child process)
def command_line() -> str:
    """This process's command as a reader would type it from the repository root: the interpreter's name, then
    the arguments, with the script's path relative to the root (``run_all.py`` passes absolute paths)."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0]
    return " ".join([Path(sys.executable).name, shown, *sys.argv[1:]])


def _status_kb(key: str) -> int:
    """A ``kB`` field (VmRSS, VmHWM) of /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _median_ms(fn, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def step_bench_args(description: str, memory_child, models: tuple[str, ...] = ()) -> argparse.Namespace | None:
    """``--steps``, ``--warmup``, ``--memory-child NAME`` (and ``--model``, one of ``models``, the first by default,
    where given) of a one-step benchmark script; in a memory child process runs ``memory_child(NAME)`` (which prints
    its ``print_child_peak``) and returns None."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=whole(1), default=10)
    parser.add_argument("--warmup", type=whole(0), default=2)
    if models:
        parser.add_argument("--model", choices=models, default=models[0])
    parser.add_argument("--memory-child")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return None
    return args


def setup_line(net: str) -> str:
    """``net`` described, then the torch threads and the torch / Python versions: a one-step benchmark's first line."""
    import torch

    versions = {"torch": torch.__version__, "python": platform.python_version()}
    return f"{net}; torch threads {torch.get_num_threads()}; {versions}"


def child_peak_mb(script: str, name: str) -> float | None:
    """Peak MB of two training steps of case ``name`` above their start, measured by ``script --memory-child name``
    in a fresh process (``MALLOC_MMAP_THRESHOLD_=65536``: freed blocks of 64 KiB or more go back at once); None
    when the child fails."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run([sys.executable, script, "--memory-child", name], capture_output=True, text=True,
                          check=False, env=env)
    return json.loads(done.stdout)["mb"] if done.returncode == 0 and done.stdout.strip() else None


def print_child_peak(step) -> None:
    """In the ``--memory-child`` process: one warm-up ``step()`` (weight gradients exist from then on, as in a
    training loop), then print ``{"mb": peak RSS of two steps above the RSS before them}`` as JSON."""
    step()
    ok, base = _reset_peak(), _status_kb("VmRSS")
    for _ in range(2):
        step()
    print(json.dumps({"mb": (_status_kb("VmHWM") - base) / 1024 if ok else None}))


def run_case(framework: str, net: str, timesteps: int, batch: int, warmup: int, steps: int, threads: int = 0,
             memory_format: str = "contiguous", precision: str = "fp32") -> dict:
    """Measure one case in this process; returns the numbers as a dict (module docstring). ``memory_format``
    ``channels_last``: the model's conv weights and the input batch in channels-last layout (every framework
    alike, as ``deepspike train ... train.channels_last=true`` does). ``precision`` ``bf16``: forward and loss
    under ``torch.autocast("cpu", torch.bfloat16)`` for every framework (as ``train.precision=bf16``)."""
    import contextlib

    import torch

    def autocast():
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    if threads > 0:
        torch.set_num_threads(threads)  # numba kernels follow torch's thread count

    sys.path.insert(0, str(HERE / "peers"))
    import nets

    torch.manual_seed(0)
    model = nets.build(framework, net, timesteps)
    x = torch.rand(batch, *nets.NETS[net])
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    with autocast():  # one-sample step first: lazy library init (JIT, kernels) is not "memory"
        first = loss_fn(model(x[:1]), y[:1])
    first.backward()
    peak_ok = _reset_peak()
    start_kb = _status_kb("VmRSS")
    for _ in range(warmup):
        train_step()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    train_ms = _median_ms(train_step, 0, steps)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / steps  # after warm-up
    peak_mb = (_status_kb("VmHWM") - start_kb) / 1024 if peak_ok else float("nan")

    model.eval()

    def infer():
        with torch.no_grad(), autocast():
            model(x)

    infer_ms = _median_ms(infer, warmup, steps)
    return {
        "framework": framework,
        "net": net,
        "T": timesteps,
        "batch": batch,
        "train_ms": train_ms,
        "infer_ms": infer_ms,
        "peak_train_mb": peak_mb,
        "faults_per_step": faults,
        "threads": torch.get_num_threads(),
        "memory_format": memory_format,
        "precision": precision,
    }


# ----------------------------------------------------------------------------- the table (parent process)
def _versions(python: str) -> str:
    code = (
        "import importlib, torch\nout = ['torch ' + torch.__version__]\n"
        "for n in ('snntorch', 'spikingjelly', 'numba'):\n"
        "    try:\n        m = importlib.import_module(n)\n"
        "        out.append(n + ' ' + getattr(m, '__version__', importlib.metadata.version(n)))\n"
        "    except Exception:\n        pass\nprint(', '.join(out))"
    )
    res = subprocess.run([python, "-c", "import importlib.metadata\n" + code], capture_output=True, text=True)
    return res.stdout.strip() or res.stderr.strip().splitlines()[-1]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def child_error(done: subprocess.CompletedProcess) -> str:
    """What a failed child process says: its last stderr line, else how it ended (a child the kernel's OOM killer
    ends writes nothing: ``killed by signal 9``)."""
    tail = done.stderr.strip().splitlines()
    if tail:
        return tail[-1]
    code = done.returncode
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}, no output"


def _spawn(python: str, args, framework: str, net: str, t: int, env: dict) -> dict:
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--case",
        f"{framework}:{net}:{t}",
        "--batch",
        str(args.batch),
        "--warmup",
        str(args.warmup),
        "--steps",
        str(args.steps),
        "--threads",
        str(args.threads),
        "--memory-format",
        args.memory_format,
        "--precision",
        args.precision,
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.case_timeout)
    except subprocess.TimeoutExpired:  # one row says so; the cases measured before and after are kept
        return {"framework": framework, "net": net, "T": t, "error": f"timeout after {args.case_timeout:g} s"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        return {"framework": framework, "net": net, "T": t, "error": child_error(res)}
    return json.loads(lines[-1])


def _fmt(value: float, spec: str = ".1f") -> str:
    return "n/a" if value is None or value != value else format(value, spec)


METRICS = ("train_ms", "infer_ms", "peak_train_mb", "faults_per_step")


def configs(text: str) -> list[tuple[str, int]]:
    """An argparse ``type``: ``--configs`` (``net:T`` pairs of ``peers/nets.py`` nets and ``PRESETS`` names, comma
    separated) as ``[(net, T), ...]``; anything else is argparse's error."""
    sys.path.insert(0, str(HERE / "peers"))
    import nets

    pairs = []
    for item in ",".join(PRESETS.get(c, c) for c in text.split(",")).split(","):
        net, _, t = item.partition(":")
        try:
            pairs.append((net, whole(1)(t)))
        except argparse.ArgumentTypeError:
            net = ""
        if net not in nets.NETS:
            raise argparse.ArgumentTypeError(f"{item!r} is not NET:T with T a whole number from 1 (nets: "
                                             f"{', '.join(nets.NETS)}; presets: {', '.join(PRESETS)})")
    return pairs


def median_rows(rows: list[dict]) -> list[dict]:
    """Per (net, T, framework) one row holding each metric's median over its runs (``rounds`` = how many);
    ANN rows stay as they are (the table averages them). Errors are kept when a case never succeeded."""
    out: list[dict] = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["framework"] == "ann":
            out.append(r)
        else:
            groups.setdefault((r["net"], r["T"], r["framework"]), []).append(r)
    for runs in groups.values():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            out.append(runs[-1])
            continue
        merged = dict(ok[0], rounds=len(ok))
        merged.update({m: statistics.median(r[m] for r in ok) for m in METRICS})
        out.append(merged)
    return out


def markdown(rows: list[dict], header: str) -> str:
    """One table per (net, T): times, ratios to T x ANN, peak memory and page faults per step."""
    out = [header, ""]
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["net"], r["T"]), []).append(r)
    for (net, t), group in groups.items():
        ann = [r for r in group if r["framework"] == "ann" and "error" not in r]
        ann_train = statistics.mean(r["train_ms"] for r in ann) if ann else float("nan")
        ann_infer = statistics.mean(r["infer_ms"] for r in ann) if ann else float("nan")
        ann_mem = statistics.mean(r["peak_train_mb"] for r in ann) if ann else float("nan")
        out += [
            f"### {net}, T = {t}, batch {group[0].get('batch', '')}",
            "",
            f"ANN step {_fmt(ann_train)} ms (runs: {', '.join(_fmt(r['train_ms']) for r in ann)}), "
            f"ANN forward {_fmt(ann_infer)} ms, ANN peak {_fmt(ann_mem, '.0f')} MB above start.",
            "",
            "| framework | train step ms | / (T x ANN) | inference ms | / (T x ANN) | peak train MB above start "
            "| page faults / step |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in group:
            if r["framework"] == "ann":
                continue
            if "error" in r:
                out.append(f"| {r['framework']} | error: {r['error']} | | | | | |")
                continue
            out.append(
                f"| {r['framework']} | {_fmt(r['train_ms'])} | {_fmt(r['train_ms'] / (t * ann_train), '.2f')}"
                f" | {_fmt(r['infer_ms'])} | {_fmt(r['infer_ms'] / (t * ann_infer), '.2f')}"
                f" | {_fmt(r['peak_train_mb'], '.0f')} | {_fmt(r['faults_per_step'], '.0f')} |"
            )
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)  # framework:net:T, run in this process
    ap.add_argument("--configs", type=configs, default="default",
                    help=f"net:T,... to measure, or a preset ({', '.join(PRESETS)})")
    ap.add_argument("--frameworks", type=names(("ann", "deepspike", *PEERS)), default="ann,deepspike,snntorch,"
                    "spikingjelly")
    ap.add_argument("--batch", type=whole(1), default=32)
    ap.add_argument("--warmup", type=whole(0), default=3)
    ap.add_argument("--steps", type=whole(1), default=10)
    ap.add_argument("--threads", type=whole(0), default=0, help="torch threads per case (0: torch's default)")
    ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned")
    ap.add_argument("--memory-format", choices=("contiguous", "channels_last"), default="contiguous",
                    help="layout of the conv weights and the input batch, for every framework")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: every framework's forward and loss under CPU bfloat16 autocast")
    ap.add_argument("--peer-python", default=str(DEFAULT_PEER_PYTHON))
    ap.add_argument("--case-timeout", type=seconds, default=1800.0)
    ap.add_argument("--rounds", type=whole(1), default=1,
                    help="repeat every config's whole case order this many times; report per-framework medians")
    ap.add_argument("--json", type=output_file, help="write all rows here")
    ap.add_argument("--markdown", type=output_file, help="write the tables here (also printed)")
    args = ap.parse_args()

    if args.case:
        framework, net, t = args.case.split(":")
        print(json.dumps(run_case(framework, net, int(t), args.batch, args.warmup, args.steps, args.threads,
                                  args.memory_format, args.precision)))
        return

    frameworks = args.frameworks
    peer_python = args.peer_python if Path(args.peer_python).exists() else None
    own_python = peer_python or sys.executable  # one interpreter for every case when the bench venv exists
    env = dict(os.environ)
    if args.malloc == "tuned":
        env.update(TUNED_MALLOC)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    rows = []
    for net, t in args.configs:
        order = ["ann"] + [f for f in frameworks if f != "ann"] + (["ann"] if "ann" in frameworks else [])
        for fw in order * args.rounds:
            if fw in PEERS and peer_python is None:
                rows.append({"framework": fw, "net": net, "T": t, "error": "no bench venv (peers/setup.sh)"})
                continue
            row = _spawn(own_python, args, fw, net, t, env)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    load = os.getloadavg()
    header = "\n".join(
        [
            f"Machine: {_cpu()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
            f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}.",
            f"Versions: {_versions(own_python)}; python {platform.python_version()}.",
            f"Allocator: {ALLOCATOR_TEXT[args.malloc]}"
            f" for every case; torch threads {args.threads or 'default'}; memory format {args.memory_format}"
            f" and precision {args.precision} (bf16: autocast) for every framework.",
            f"Medians of {args.steps} steps after {args.warmup} warm-up steps; each case in a fresh process; "
            "ANN measured first and last"
            + (f"; the case order repeated {args.rounds} times and each framework's median over the rounds "
               "reported (ANN: mean of all its runs)." if args.rounds > 1 else "."),
            f"Command: `{command_line()}`",
        ]
    )
    text = markdown(median_rows(rows), header)
    print(text)
    if args.markdown:
        write_result(ap, args.markdown, text + "\n")
    if args.json:
        write_result(ap, args.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
