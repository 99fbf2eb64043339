"""Tensor memory of the benchmark nets, counted exactly (deterministic, unlike peak RSS): every framework's
``peers/nets.py`` net, batch 32, SGD, cross-entropy, one case per fresh process.

* saved: bytes of the activations autograd saves for backward in one forward pass (saved-tensor hooks,
  each storage counted once by address; a saved storage freed during the forward pass, e.g. of a graph
  branch that nothing keeps, may have its address reused and is then counted once, so this figure can vary
  between runs for such nets: up to 7% for snnTorch's, in an audit that reran it in session 23);
* peak: the largest total of live tensor bytes allocated during one training step (zero_grad, forward,
  backward, SGD step; two untimed steps first), from torch.profiler's allocation and free events, so
  everything alive before the step (weights, the batch) is not counted: "peak above the start" like
  ``bench_rate.py``'s RSS column, but without the allocator's caching and fragmentation; the same in every
  run.

Peers need the benchmark venv. Run: ``.bench-venv/bin/python benchmarks/tensor_memory.py [--markdown]
[--cases default|deep|plif|net:T,...]`` (``deep``: VGG-11 and SEW-ResNet-18 at T = 4 and 8; ``plif``: the same with
PLIF neurons; ``bench_rate.PRESETS``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))
from bench_rate import PRESETS, child_error, configs  # noqa: E402
from nets import FRAMEWORKS, NETS, build  # noqa: E402

MB = 2**20


def saved_mb(model: torch.nn.Module, x: torch.Tensor) -> float:
    """MB that autograd saves for backward during one forward of ``model`` on ``x``."""
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(storages.values()) / MB


def peak_step_mb(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Peak MB of tensors allocated and alive at once during one training step (module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak / MB


def measure(framework: str, net: str, timesteps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build(framework, net, timesteps)
    x = torch.rand(32, *NETS[net])
    y = torch.randint(0, 10, (32,))
    return saved_mb(model, x), peak_step_mb(model, x, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", help="framework:net:T, measured in this process (internal)")
    ap.add_argument("--markdown", action="store_true", help="print one Markdown table")
    ap.add_argument("--cases", type=configs, default="default", help=f"net:T,... or a preset ({', '.join(PRESETS)})")
    args = ap.parse_args()
    if args.case:
        fw, net, t = args.case.split(":")
        saved, peak = measure(fw, net, int(t))
        print(f"{saved:.1f} {peak:.1f}")
        return
    rows = []
    for net, t in args.cases:
        for fw in FRAMEWORKS:
            out = subprocess.run([sys.executable, __file__, "--case", f"{fw}:{net}:{t}"], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                print(f"{net} T={t} {fw}: failed ({child_error(out)})", file=sys.stderr)
                continue
            saved, peak = map(float, out.stdout.split()[-2:])
            rows.append((net, t, fw, saved, peak))
            if not args.markdown:
                print(f"{net} T={t} {fw:12s} saved {saved:7.1f} MB, peak in a step {peak:7.1f} MB", flush=True)
    if args.markdown:
        print(markdown(rows))


def markdown(rows: list[tuple[str, int, str, float, float]]) -> str:
    """One table; the ratio column is deepspike's peak over the lowest peer peak of the same case."""
    lines = ["| net | T | framework | saved for backward MB | peak tensors in a step MB | / lowest peer |",
             "|---|---|---|---|---|---|"]
    for net, t, fw, saved, peak in rows:
        peers = [p for n, tt, f, _, p in rows if n == net and tt == t and f not in ("ann", "deepspike")]
        ratio = f"{peak / min(peers):.2f}" if fw == "deepspike" and peers else ""
        lines.append(f"| {net} | {t} | {fw} | {saved:.1f} | {peak:.1f} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
