"""Time the masked and sliding parallel spiking neurons against SpikingJelly 2.0's ``MaskedPSN`` / ``SlidingPSN``.

Cases (float32, one thread, arctan surrogate on both sides: our ``arctan``, SpikingJelly's ``ATan``):

* one neuron layer, forward + backward of ``sum(spikes * g)`` with gradients of the input, weights and thresholds,
  on an image-net shape ``[T = 8, B = 32, 64, 16, 16]`` (k = 4) and a sequence shape ``[T = 100, B = 32, 256]``
  (the SHD-like length, k = 8);
* streaming inference of the sliding neuron on the sequence shape, one step per call: ours carries the last k - 1
  inputs (``temporal_carry``), SpikingJelly's single-step mode keeps a queue of the last k.

Interleaved rounds after one warm-up, medians. The last column counts the spikes that differ between the two (their
membranes are summed in another order, so a value within float32 rounding of the threshold may fall either way);
``tests/conformance/test_psn_family_against_spikingjelly.py`` checks spikes and gradients in float64.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .bench-venv/bin/python benchmarks/bench_psn.py --rounds 7
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from spikingjelly.activation_based import functional, neuron, surrogate

from deepspike.neurons.carry import temporal_carry
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.sliding_psn import SlidingPSN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_checks import whole  # noqa: E402

IMAGE, SEQUENCE = (8, 32, 64, 16, 16), (100, 32, 256)


def _pair(kind: str, shape: tuple[int, ...], order: int):
    """Our neuron and SpikingJelly's with the same weights and thresholds (their bias = minus our threshold)."""
    steps = shape[0]
    if kind == "masked":
        ours = MaskedPSN(steps, order, threshold=0.3, surrogate="arctan")
        ours.begin_epoch(0, 1)  # the band alone
        theirs = neuron.MaskedPSN(k=order, T=steps, lambda_init=1.0, surrogate_function=surrogate.ATan(), step_mode="m")
        bias = -ours.bias.detach().view(steps, 1)
    else:
        ours = SlidingPSN(order, threshold=0.3, surrogate="arctan")
        theirs = neuron.SlidingPSN(k=order, surrogate_function=surrogate.ATan(), step_mode="m")
        bias = -ours.bias.detach()
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
        theirs.bias.copy_(bias)
    return ours, theirs


def _train_call(module, x, g):
    x = x.detach().requires_grad_()
    s = module(x)
    (s * g).sum().backward()
    module.zero_grad(set_to_none=True)
    return s.detach()


def _stream_ours(module, x):
    with torch.no_grad(), temporal_carry(module):
        return torch.cat([module(x[t:t + 1]) for t in range(x.shape[0])])


def _stream_theirs(module, x):
    functional.reset_net(module)
    module.step_mode = "s"
    with torch.no_grad():
        out = torch.stack([module(x[t]) for t in range(x.shape[0])])
    module.step_mode = "m"
    return out


def _time(fn, *args) -> tuple[float, torch.Tensor]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


CASES = [  # (name, neuron kind, shape, k, ours, theirs)
    ("masked, k 4, [8, 32, 64, 16, 16], fwd + bwd", "masked", IMAGE, 4, _train_call, _train_call),
    ("sliding, k 4, [8, 32, 64, 16, 16], fwd + bwd", "sliding", IMAGE, 4, _train_call, _train_call),
    ("masked, k 8, [100, 32, 256], fwd + bwd", "masked", SEQUENCE, 8, _train_call, _train_call),
    ("sliding, k 8, [100, 32, 256], fwd + bwd", "sliding", SEQUENCE, 8, _train_call, _train_call),
    ("sliding, k 8, [100, 32, 256], streaming (100 one-step calls)", "sliding", SEQUENCE, 8, _stream_ours,
     _stream_theirs),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=whole(1), default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, "
          f"{args.rounds} rounds after 1 warm-up\n")
    print("| case | deepspike ms | SpikingJelly ms | SpikingJelly / deepspike | spikes differing |")
    print("|---|---:|---:|---:|---:|")
    for name, kind, shape, order, run_ours, run_theirs in CASES:
        torch.manual_seed(0)
        ours, theirs = _pair(kind, shape, order)
        x, g = torch.randn(*shape), torch.randn(*shape)
        times: dict[str, list[float]] = {"ours": [], "theirs": []}
        for r in range(args.rounds + 1):
            a, s_ours = _time(run_ours, ours, *((x, g) if run_ours is _train_call else (x,)))
            b, s_theirs = _time(run_theirs, theirs, *((x, g) if run_theirs is _train_call else (x,)))
            if r:
                times["ours"].append(a)
                times["theirs"].append(b)
        a, b = statistics.median(times["ours"]) * 1e3, statistics.median(times["theirs"]) * 1e3
        differing = int((s_ours != s_theirs).sum())
        print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.1f} | {differing} of {s_ours.numel():,} |")


if __name__ == "__main__":
    main()
