"""``make bench``: regenerate the speed tables of ``benchmarks/RESULTS.md``, each table from one run.

Runs ``bench_rate.py`` (rate-coded nets vs peers and the ANN, once in the default contiguous layout and once
with every framework in channels-last layout), ``tensor_memory.py`` (exact saved and peak tensor bytes of the
same nets, with the benchmark venv's python), ``bench_memory_t.py`` (training memory against T for every
``train.temporal_grad`` beside the peers), ``bench_ttfs_layers.py`` (TTFS layers vs
the same-shape ANN layer), ``bench_ttfs_net.py`` (zhang2021's conv net step and a TTFS conv layer's memory
vs the ANN), ``bench_rate.py --configs deep`` and ``--configs plif`` (VGG-11 and SEW-ResNet-18 at T = 4, 8, LIF
and PLIF, and the first under bfloat16 autocast), ``bench_on.py`` (the Open Neuromorphic benchmark: Linear + LIF,
batch 16, T = 500, against snnTorch, SpikingJelly, Norse and Spyx, in float32 and in bfloat16) and
``bench_ttfs_peer.py`` (deepspike's closed-form TTFS vs exact-snn-nn), and writes each one's output between its
markers in the results file::

    <!-- bench:rate:start --> ... <!-- bench:rate:end -->
    <!-- bench:rate_cl:start --> ... <!-- bench:rate_cl:end -->
    <!-- bench:tensors:start --> ... <!-- bench:tensors:end -->
    <!-- bench:memory_t:start --> ... <!-- bench:memory_t:end -->
    <!-- bench:ttfs:start --> ... <!-- bench:ttfs:end -->
    <!-- bench:ttfsnet:start --> ... <!-- bench:ttfsnet:end -->
    <!-- bench:rate_deep:start --> ... (also rate_plif, rate_deep_bf16, on, on_bf16, ttfs_peer)

Text outside the markers (accuracy tables, notes) is kept; a missing section is appended. Peers need the
benchmark venv: ``bash benchmarks/peers/setup.sh`` (run first automatically unless ``--no-setup``).
Run on an otherwise idle machine: the timings are ratios taken in one run, but other load distorts them.

Usage: ``python benchmarks/run_all.py [--out benchmarks/RESULTS.md] [--quick] [--no-setup]
[--only rate,rate_cl,tensors,memory_t,ttfs,ttfsnet,rate_deep,rate_plif,rate_deep_bf16,on,on_bf16,
ttfs_peer]``
(``--quick``: 3 steps, LeNet T=25 and VGG T=4 only, for a smoke test).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_rate import DEFAULT_PEER_PYTHON  # noqa: E402 (the benchmark venv's python)
from cli_checks import names, output_file, write_result  # noqa: E402

SECTIONS = ("rate", "rate_cl", "tensors", "memory_t", "ttfs", "ttfsnet", "rate_deep", "rate_plif", "rate_deep_bf16",
            "on", "on_bf16", "ttfs_peer")


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the block between ``<!-- bench:NAME:start -->`` and ``:end -->`` set to ``body``."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"


def _run(cmd: list[str]) -> str:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise SystemExit(f"benchmark failed (exit {res.returncode}): {' '.join(cmd)}")
    return res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=output_file, default=str(HERE / "RESULTS.md"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-setup", action="store_true")
    ap.add_argument("--only", type=names(SECTIONS), default=",".join(SECTIONS))
    args = ap.parse_args()
    parts = args.only
    uses_peers = {"rate", "rate_cl", "tensors", "memory_t", "rate_deep", "rate_plif", "rate_deep_bf16", "on", "on_bf16",
                  "ttfs_peer"}
    if uses_peers & set(parts) and not args.no_setup:
        subprocess.run(["bash", str(HERE / "peers" / "setup.sh")], check=True)
    out = Path(args.out)
    text = out.read_text() if out.exists() else ""
    for section, fmt, title in (
        ("rate", "contiguous", "## Rate-coded training: deepspike vs peers vs ANN"),
        ("rate_cl", "channels_last", "## Rate-coded training, every framework in channels-last layout"),
    ):
        if section not in parts:
            continue
        cmd = [sys.executable, str(HERE / "bench_rate.py"), "--rounds", "1" if args.quick else "3",
               "--memory-format", fmt]
        if args.quick:
            cmd += ["--configs", "lenet:25,vgg:4", "--steps", "3", "--warmup", "1"]
        text = replace_section(text, section, title + "\n\n" + _run(cmd))
    if "tensors" in parts:
        peers = DEFAULT_PEER_PYTHON.exists()
        python = str(DEFAULT_PEER_PYTHON) if peers else sys.executable  # without peers: ANN and deepspike only
        shown = str(DEFAULT_PEER_PYTHON.relative_to(HERE.parent)) if peers else "python"
        table = _run([python, str(HERE / "tensor_memory.py"), "--markdown"])
        text = replace_section(text, "tensors", "## Exact tensor memory of the rate-coded benchmark nets\n\n"
                               f"Command: `{shown} benchmarks/tensor_memory.py --markdown` (module "
                               "docstring: saved = kept from forward to backward, peak = live tensors during one "
                               "training step, batch 32).\n\n" + table)
    if "memory_t" in parts:
        text = replace_section(text, "memory_t", _memory_against_t(args.quick))
    if "ttfs" in parts:
        cmd = [sys.executable, str(HERE / "bench_ttfs_layers.py")] + (["--repeats", "2"] if args.quick else [])
        table = _run(cmd)
        text = replace_section(text, "ttfs", "## TTFS layers vs the same-shape ANN layer\n\n```\n" + table + "```")
    if "ttfsnet" in parts:
        table = _run([sys.executable, str(HERE / "bench_ttfs_net.py")])
        text = replace_section(text, "ttfsnet", "## TTFS network step and layer memory vs ANN\n\n```\n" + table + "```")
    text = _speed_two(text, parts, args.quick)
    write_result(ap, out, text)  # atomically: the results file is whole, old or new, whatever happens
    print(f"wrote {out}", file=sys.stderr)


def _speed_two(text: str, parts: list[str], quick: bool) -> str:
    """Issue 26's sections: the deep rate-coded nets (LIF and PLIF), the Open Neuromorphic benchmark and the
    TTFS peer, each run with the benchmark venv's python (the peers live there)."""
    python = str(DEFAULT_PEER_PYTHON) if DEFAULT_PEER_PYTHON.exists() else sys.executable
    for section, preset, title, extra in (
        ("rate_deep", "deep", "## Deep nets, rate-coded: VGG-11 and SEW-ResNet-18", ["--warmup", "1"]),
        ("rate_plif", "plif", "## Deep nets with PLIF neurons (learnable decay)", ["--warmup", "1"]),
        ("rate_deep_bf16", "deep", "## Deep nets under bfloat16 autocast", ["--warmup", "2", "--precision", "bf16"]),
    ):
        if section in parts:
            cmd = [python, str(HERE / "bench_rate.py"), "--configs", "vgg11:4" if quick else preset,
                   "--rounds", "1" if quick else "3", "--steps", "2" if quick else "3", *extra]
            text = replace_section(text, section, title + "\n\n" + _run(cmd))
    for section, dtype, title in (("on", "float32", "## Open Neuromorphic benchmark: Linear + LIF, batch 16, T = 500"),
                                  ("on_bf16", "bfloat16", "## Open Neuromorphic benchmark in bfloat16")):
        if section in parts:
            cmd = [python, str(HERE / "bench_on.py"), "--markdown", "--dtype", dtype]
            if quick:
                cmd += ["--neurons", "1024", "--timesteps", "50", "--steps", "2", "--warmup", "1"]
            text = replace_section(text, section, title + "\n\n" + _run(cmd))
    if "ttfs_peer" in parts:
        cmd = [sys.executable, str(HERE / "bench_ttfs_peer.py"), "--peer-python", python, "--part", "timing",
               "--steps", "5", "--warmup", "1", "--threads", "1"]
        text = replace_section(text, "ttfs_peer", "## TTFS against a TTFS library: exact-snn-nn\n\n" + _run(cmd))
    return text


def _memory_against_t(quick: bool) -> str:
    """The memory-against-T section (``bench_memory_t.py``), run with the benchmark venv's python."""
    peers = DEFAULT_PEER_PYTHON.exists()
    python = str(DEFAULT_PEER_PYTHON) if peers else sys.executable
    cases = [] if peers else ["--cases", "deepspike-bptt,deepspike-checkpoint,deepspike-sltt,deepspike-ottt"]
    ts = ["--timesteps", "4,16", "--steps", "1"] if quick else []
    cmd = [python, str(HERE / "bench_memory_t.py"), "--markdown", *cases, *ts]
    shown = " ".join(["python" if not peers else str(DEFAULT_PEER_PYTHON.relative_to(HERE.parent)),
                      "benchmarks/bench_memory_t.py", "--markdown", *cases, *ts])
    return ("## Training memory against T: BPTT, checkpointed BPTT, SLTT, OTTT and the peers\n\n"
            f"Command: `{shown}` (module docstring; the VGG-style benchmark net, batch 32).\n\n" + _run(cmd))


if __name__ == "__main__":
    main()
