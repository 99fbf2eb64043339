"""Deep single-spike TTFS nets (issue 20): a training step of each against the same-shape ANN step.

Nets at 3x32x32, 10 classes, batch ``--batch`` (16), Adam, random data: ``vgg11``, ``vgg16`` and ``resnet18``
(batch-norm, max pooling) under ``ttfs_window`` (windowed ReL-PSP neurons: the exact image of the ReLU net;
windows set from the first batch), and ``vgg11`` without batch-norm under ``ttfs`` (zhou2021's exp-kernel
neurons with its time-domain batch-norm, ``method.batchnorm``); each beside ``ann`` on the same architecture,
measured before and after it in the same process (median over both). ``--steps`` steps after 2 warm-up steps.

Run: ``.venv/bin/python benchmarks/bench_ttfs_deep.py [--steps 5] [--batch 16] [--threads 0]`` on an idle
machine; prints a markdown table (``--only vgg11_window,...`` for a subset).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ttfs_net import _step_times  # noqa: E402 (Adam training steps of a method's model)

CASES = {
    "vgg11_window": ("vgg11", {"pool": "max"}, "ttfs_window", {}),
    "vgg16_window": ("vgg16", {}, "ttfs_window", {}),
    "resnet18_window": ("resnet18", {}, "ttfs_window", {}),
    "vgg11_zhou2021_bn": ("vgg11", {"batch_norm": False, "pool": "max"}, "ttfs", {"batchnorm": True, "coding": "p",
                                                                  "alpha": 5.0}),
}


def case_times(case: str, steps: int, batch: int) -> tuple[float, float]:
    """Median step seconds of (ANN, TTFS) for ``case``."""
    import torch

    from deepspike.methods import get_method
    from deepspike.models import create_architecture

    model_name, model_args, method_name, options = CASES[case]
    arch = create_architecture(model_name, num_classes=10, input_shape=(3, 32, 32), **model_args)
    torch.manual_seed(0)
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    times: dict[str, list[float]] = {"ann": [], method_name: []}
    for name, opts in (("ann", {}), (method_name, options), ("ann", {})):
        torch.manual_seed(0)
        method = get_method(name, opts)
        times[name] += _step_times(method, method.build(arch), x, y, steps)
    return statistics.median(times["ann"]), statistics.median(times[method_name])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--only", default=",".join(CASES))
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, 3x32x32, "
          f"median of {args.steps} steps\n")
    print("| net | method | ANN step (ms) | TTFS step (ms) | TTFS / ANN |")
    print("|---|---|---:|---:|---:|")
    for case in args.only.split(","):
        ann, ttfs = case_times(case, args.steps, args.batch)
        model, _, method, _ = CASES[case]
        print(f"| {case} | {method} | {ann * 1e3:.1f} | {ttfs * 1e3:.1f} | {ttfs / ann:.2f} |", flush=True)


if __name__ == "__main__":
    main()
