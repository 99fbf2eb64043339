"""Training memory against T: deepspike's four ``train.temporal_grad`` modes beside snnTorch and SpikingJelly.

The VGG-style benchmark net of ``peers/nets.py`` (3x32x32, [64C3-BN-AP2]-[128C3-BN-AP2]-[256C3-BN-AP2]-FC10, LIF
0.5 / 1.0, arctan surrogate, direct input, readout = mean over T of the last layer's output), batch 32, SGD,
one case per fresh process. deepspike runs the same layers as a ``RateNetwork`` (``peers/nets.py``'s deepspike
idiom: ``TimeDistributed`` layers, neuron + pooling fused in ``SpikingSequential``) with

* ``bptt``: one backward through all T steps;
* ``checkpoint``: segments of ``ceil(sqrt(T))`` steps recomputed in backward (batch-norm statistics per segment);
* ``sltt``, ``ottt``: one step at a time, each step's loss backpropagated at once (batch-norm per step);

the peers run BPTT in their own idioms (snnTorch: a Python loop over T; SpikingJelly: multi-step layers).

Columns: peak tensors = the largest total of live tensor bytes during one training step (torch.profiler's
allocation events, after two untimed steps; everything alive before the step, weights and the batch, is not
counted; deterministic, measured after the timed steps); peak RSS = the process's peak resident memory over
the training steps above the RSS before them (after one batch-1 step that loads every library, and after the
weights and the batch are built, which are not counted either; allocator caching included); step = median wall time
of ``--steps`` training steps after one untimed step. A case whose extrapolated peak RSS (from the largest T measured
for it: ``GROWTH``, linear in T for BPTT and the peers, as sqrt(T) for checkpointing, flat for SLTT and OTTT, as
the tables show) exceeds ``--max-gb`` is not run and says so.

Run: ``.bench-venv/bin/python benchmarks/bench_memory_t.py [--timesteps 4,16,64,256] [--steps 3] [--markdown]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))
sys.path.insert(0, str(HERE))
from cli_checks import names, positive, whole, wholes  # noqa: E402

MB = 2**20
MODES = ("bptt", "checkpoint", "sltt", "ottt")
CASES = tuple(f"deepspike-{m}" for m in MODES) + ("snntorch", "spikingjelly")
GROWTH = {"deepspike-checkpoint": (0.5, "as sqrt(T)"), "deepspike-sltt": (0.0, "flat in T"),
          "deepspike-ottt": (0.0, "flat in T")}
"""A case's peak memory against T: ``(p, words)``, the peak grows as ``T ** p``; any other case: linear in T."""


def _deepspike_net(timesteps: int, mode: str):
    """The benchmark VGG as a ``RateNetwork`` set up for ``mode`` (``training.temporal_grad``)."""
    import nets

    from deepspike.coding.encoder import InputEncoder
    from deepspike.layers.readout import MembraneReadout
    from deepspike.methods.rate_network import RateNetwork
    from deepspike.training.temporal_grad import prepare_temporal_grad

    body = nets.build("deepspike", "vgg", timesteps).body
    net = RateNetwork(InputEncoder("direct"), body, MembraneReadout(), timesteps)
    prepare_temporal_grad(net, mode, None, "stbp")
    return net


class _CrossEntropy:
    """The method interface ``online_step`` needs: cross-entropy, no penalty."""

    def loss(self, out, y):
        import torch.nn.functional as F

        return F.cross_entropy(out, y)

    def penalty(self, net):
        return None


def _train_step(case: str, timesteps: int, batch: int = 32):
    """``(step, model)``: one training step (zero_grad, forward, cross-entropy, backward, SGD) of ``case``."""
    import nets
    import torch
    import torch.nn.functional as F

    from deepspike.training.temporal_grad import ONLINE, online_step

    torch.manual_seed(0)
    mode = case.split("-", 1)[1] if case.startswith("deepspike-") else None
    model = _deepspike_net(timesteps, mode) if mode else nets.build(case, "vgg", timesteps)
    x, y = torch.rand(batch, *nets.NETS["vgg"]), torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        if mode in ONLINE:
            online_step(model, model, _CrossEntropy(), x, y, mode)
        else:
            F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _peak_tensor_mb(step) -> float:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak / MB


def measure(case: str, timesteps: int, steps: int, train_step=None) -> dict:
    """One case in this process (module docstring); ``train_step(case, timesteps, batch)`` builds its step (default
    this benchmark's VGG, ``_train_step``)."""
    from bench_rate import _reset_peak, _status_kb

    train_step = train_step or _train_step
    train_step(case, timesteps, batch=1)()  # libraries and kernels loaded before the RSS baseline
    step = train_step(case, timesteps)  # the weights and the batch, not counted (module docstring)
    peak_ok = _reset_peak()
    start_kb = _status_kb("VmRSS")
    step()  # untimed
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss = (_status_kb("VmHWM") - start_kb) / 1024 if peak_ok else float("nan")
    peak_tensors = _peak_tensor_mb(step)
    return {"case": case, "T": timesteps, "peak_tensors_mb": peak_tensors, "peak_rss_mb": rss,
            "step_s": statistics.median(times)}


def markdown(rows: list[dict]) -> str:
    """The table, with each deepspike mode's peak as a multiple of its own peak at the smallest T and of
    deepspike BPTT's peak at the same T."""
    lines = ["| case | T | peak tensors MB | peak RSS MB | step s | / own peak at smallest T | "
             "/ deepspike BPTT peak | / deepspike BPTT step |", "|---|---|---|---|---|---|---|---|"]
    measured = [r for r in rows if "skipped" not in r]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['case']} | {r['T']} | not run: {r['skipped']} | | | | | |")
            continue
        own = min((q for q in measured if q["case"] == r["case"]), key=lambda q: q["T"])
        bptt = next((q for q in measured if q["case"] == "deepspike-bptt" and q["T"] == r["T"]), None)
        ratio = lambda a, b: f"{a / b:.2f}" if b else ""  # noqa: E731
        lines.append(f"| {r['case']} | {r['T']} | {r['peak_tensors_mb']:.1f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['step_s']:.2f} | {ratio(r['peak_tensors_mb'], own['peak_tensors_mb'])} | "
                     f"{ratio(r['peak_tensors_mb'], bptt['peak_tensors_mb']) if bptt else ''} | "
                     f"{ratio(r['step_s'], bptt['step_s']) if bptt else ''} |")
    return "\n".join(lines)


def main() -> None:
    run_cli(__doc__.splitlines()[0], CASES, "4,16,64,256")


def run_cli(description: str, cases: tuple[str, ...], timesteps: str, train_step=None, growth: dict | None = None,
            script: str = __file__) -> None:
    """The command line of this benchmark, or of another that measures its own ``cases`` the same way (``script``
    runs one ``--case CASE:T`` per process, built by ``train_step``; ``growth``: as ``GROWTH``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # case:T, measured in this process
    ap.add_argument("--timesteps", type=wholes(1), default=timesteps)
    ap.add_argument("--cases", type=names(cases), default=",".join(cases))
    ap.add_argument("--steps", type=whole(1), default=3)
    ap.add_argument("--max-gb", type=positive("GB"), default=12.0,
                    help="skip a case whose extrapolated peak exceeds this")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if args.case:
        case, t = args.case.split(":")
        print(json.dumps(measure(case, int(t), args.steps, train_step)))
        return
    rows: list[dict] = []
    for case in args.cases:
        for t in args.timesteps:
            rows.append(_row(case, t, args.steps, args.max_gb, rows, script, growth))
            print(rows[-1], file=sys.stderr, flush=True)
    print(markdown(rows) if args.markdown else "\n".join(map(str, rows)))


def _row(case: str, t: int, steps: int, max_gb: float, rows: list[dict], script: str = __file__,
         growth: dict | None = None) -> dict:
    """``case`` at ``t`` measured in a fresh process of ``script`` (``--case CASE:T``), or a row saying why not: its
    peak extrapolated from the largest T measured for it (``growth``, default ``GROWTH``) is over ``max_gb``, or
    the process failed (its last stderr line)."""
    from bench_rate import child_error

    done = max((r for r in rows if r["case"] == case and "skipped" not in r), key=lambda r: r["T"], default=None)
    power, words = (GROWTH if growth is None else growth).get(case, (1.0, "linear in T"))
    guess = done["peak_rss_mb"] * (t / done["T"]) ** power if done else 0
    if guess > max_gb * 1024:
        return {"case": case, "T": t, "skipped": f"about {guess / 1024:.0f} GB ({words})"}
    out = subprocess.run([sys.executable, script, "--case", f"{case}:{t}", "--steps", str(steps)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"case": case, "T": t, "skipped": child_error(out)[:80]}
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
