"""Session 41: CPU time of the numba TTFS kernels (``kernels_numba.forward_kernel`` and ``backward_kernel``, one
thread) at several commits, interleaved, with a digest of the outputs so that bit-identity across commits can be
read off.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session41/ttfs_numba_cost.py 1782600e^ 1782600e HEAD

Each argument is a git revision of this repository (``WORKTREE``: this checkout's ``src`` as it is; a folder
holding a ``src``: that one; both copied at the start); each is exported (``git archive``, its ``src`` only) into a
temporary folder and timed in its own subprocess
(``PYTHONPATH`` = that ``src``, ``NUMBA_NUM_THREADS=1``), the revisions taking turns, ``--rounds`` times (default
3), so that a shift in the machine's load falls on all of them alike. A subprocess compiles (numba's cache: first
round only), runs each case once, then times ``--repeats`` (default 7) calls of each kernel with
``time.process_time``; the table shows, per case, pass (fwd / bwd) and revision, the best over all rounds and
repeats in ms, the change against the first revision, and the outputs' digest (forward: spike times and slopes;
backward: the input, weight and bias gradients of a fixed dL/dt_out, on the revision's own forward outputs) --
equal digests mean bit-identical outputs. The inputs' argsort and the layout changes are done once, outside the
timing. ``uptime`` is printed before and after (the machine may be shared).

Session 40's fixes of the float32 forward, to compare: 1782600e (a spike time kept after its slot's last input:
the per-slot last-input times, ``track``), 49d3ae98 (relpsp's check branch-free again), a7f9f630 (tie groups
checked whole: two passes over a group); ``1782600e^`` is the kernel before both, so ``1782600e^ 1782600e`` gives
the CPU cost of the first fix and ``1782600e^ a7f9f630`` that of both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# name: (B, C, H, W, O, k, stride, padding, levels (0: no ties; else times floor(t * L / 3) * 3 / L), dtype)
CASES = {
    "conv 64x1x28x28 5x5x16 no ties": (64, 1, 28, 28, 16, 5, 1, 0, 0, "float32"),
    "conv 64x1x28x28 5x5x16 8 levels": (64, 1, 28, 28, 16, 5, 1, 0, 8, "float32"),
    "conv 16x32x14x14 3x3x32 p1 no ties": (16, 32, 14, 14, 32, 3, 1, 1, 0, "float32"),
    "conv 16x32x14x14 3x3x32 p1 16 levels": (16, 32, 14, 14, 32, 3, 1, 1, 16, "float32"),
    "conv 32x8x16x16 3x3x16 s2 no ties": (32, 8, 16, 16, 16, 3, 2, 1, 0, "float32"),
    "dense 512x64->256 no ties": (512, 64, 1, 1, 256, 1, 1, 0, 0, "float32"),
    "dense 512x64->256 16 levels": (512, 64, 1, 1, 256, 1, 1, 0, 16, "float32"),
    "conv 64x1x28x28 5x5x16 no ties f64": (64, 1, 28, 28, 16, 5, 1, 0, 0, "float64"),
    "conv 64x1x28x28 5x5x16 8 levels f64": (64, 1, 28, 28, 16, 5, 1, 0, 8, "float64"),
}
KERNELS = ("exp", "relpsp")
PASSES = ("fwd", "bwd")


def _inputs(spec):
    """Channels-last rows [B, H*W*C], their argsort, the reversed flat weights, bias and output geometry."""
    import numpy as np

    b, c, h, w, o, k, stride, pad, levels, dtype = spec
    rng = np.random.default_rng(0)
    t = rng.random((b, h * w * c)) * 3
    if levels:
        t = np.floor(t * levels / 3) * 3 / levels
    t = t.astype(dtype)
    weight = (rng.standard_normal((o, c, k, k)) * (1.5 / np.sqrt(c * k * k))).astype(dtype)
    w_r = np.ascontiguousarray(weight[:, :, :, ::-1].transpose(1, 2, 3, 0).reshape(-1))
    bias = (rng.standard_normal(o) * 0.1).astype(dtype)
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    order = np.argsort(t, axis=1, kind="stable")
    return t, order, w, c, w_r, bias, k, stride, pad, ho, wo


def _run_case(kn, spec, kernel, repeats):
    import numpy as np

    t, order, w, c, w_r, bias, k, stride, pad, ho, wo = _inputs(spec)

    def once():
        t_out = np.full((t.shape[0], ho * wo * bias.shape[0]), np.inf, dtype=t.dtype)
        slope = np.zeros_like(t_out)
        start = time.process_time()
        kn.forward_kernel(t, order, w, c, w_r, bias, True, k, k, stride, stride, pad, pad, ho, wo, kernel == "exp",
                          1.0, 1.0, t_out, slope)
        return time.process_time() - start, t_out, slope

    _, t_out, slope = once()
    digest = hashlib.sha256(t_out.tobytes() + slope.tobytes()).hexdigest()[:12]
    best = min(once()[0] for _ in range(repeats))
    grad_out = np.random.default_rng(1).standard_normal(t_out.shape).astype(t.dtype)

    def backward():
        grads = (np.zeros_like(t), np.zeros((1,) + w_r.shape, t.dtype), np.zeros((1, bias.shape[0]), t.dtype))
        start = time.process_time()
        kn.backward_kernel(t, w, c, w_r, t_out, slope, grad_out, kernel == "exp", 1.0, k, k, stride, stride, pad,
                           pad, ho, wo, True, *grads)
        return time.process_time() - start, grads

    _, grads = backward()
    back_digest = hashlib.sha256(b"".join(g.tobytes() for g in grads)).hexdigest()[:12]
    back = min(backward()[0] for _ in range(repeats))
    return (best, digest), (back, back_digest)


def worker(repeats: int, only: str) -> None:
    """Times every case (whose name contains ``only``) with the ``deepspike`` on ``PYTHONPATH``; prints one JSON line
    per case, kernel and pass."""
    import numba

    numba.set_num_threads(1)
    from deepspike.ttfs import kernels_numba as kn

    for name, spec in CASES.items():
        if only not in name:
            continue
        for kernel in KERNELS:
            for pas, (best, digest) in zip(PASSES, _run_case(kn, spec, kernel, repeats)):
                print(json.dumps({"case": name, "kernel": f"{pas} {kernel}", "ms": best * 1e3, "digest": digest}),
                      flush=True)


def _export(rev: str, into: Path) -> Path:
    """``rev``'s ``src`` under ``into`` (``WORKTREE``: a copy of this checkout's ``src`` as it is now)."""
    if Path(rev, "src", "deepspike").is_dir():  # a folder holding a src tree
        shutil.copytree(Path(rev, "src"), into / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        return into / "src"
    if rev == "WORKTREE":
        shutil.copytree(REPO / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        return into / "src"
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="*", default=["WORKTREE"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.repeats, args.only)
        return
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    best: dict = {}
    digests: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        srcs = {rev: _export(rev, Path(tmp) / f"rev{i}") for i, rev in enumerate(args.revs)}
        for _ in range(args.rounds):
            for rev, src in srcs.items():
                env = dict(os.environ, PYTHONPATH=str(src), NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
                out = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(args.repeats),
                                      "--only", args.only], env=env,
                                     check=True, capture_output=True, text=True).stdout
                for line in out.splitlines():
                    row = json.loads(line)
                    key = (row["case"], row["kernel"], rev)
                    best[key] = min(best.get(key, float("inf")), row["ms"])
                    digests[key] = row["digest"]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"{'case':38s} {'kernel':10s} " + " ".join(f"{rev[:24]:>24s}" for rev in args.revs))
    for name in (name for name in CASES if args.only in name):
        for kernel in (f"{pas} {kernel}" for pas in PASSES for kernel in KERNELS):
            base = best[(name, kernel, args.revs[0])]
            cells = []
            for rev in args.revs:
                ms = best[(name, kernel, rev)]
                cells.append(f"{ms:7.2f} {100 * (ms / base - 1):+4.0f}% {digests[(name, kernel, rev)][:6]}")
            print(f"{name:38s} {kernel:10s} " + " ".join(f"{c:>24s}" for c in cells))


if __name__ == "__main__":
    main()
