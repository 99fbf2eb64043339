"""Test accuracy of trained delay runs as trained (Gaussian kernel at sigma 0.23 around the positions) and with every
delay rounded to a whole step (``DelayedLinear.round_delays_``: each synapse delivers once). Run from the repository
root after ``run_temporal.sh``:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session26/eval_rounded_delays.py \
        runs/s26_temporal_delays_seed0
"""

import sys

import torch

from deepspike.api.training import load_run
from deepspike.layers.delays import DelayedLinear
from deepspike.training.evaluate import evaluate
from deepspike.training.run_setup import make_batches

for run in sys.argv[1:]:
    config, parts = load_run(run, device="cpu")
    model = parts.model.eval()
    batches = make_batches(config, parts.data, "test", torch.device("cpu"))
    trained = evaluate(model, parts.method, batches)["accuracy"]
    layers = [m for m in model.modules() if isinstance(m, DelayedLinear)]
    half = sum(int(((m.position.detach() % 1) - 0.5).abs().lt(0.25).sum()) for m in layers)
    total = sum(m.position.numel() for m in layers)
    for m in layers:
        m.round_delays_()
    rounded = evaluate(model, parts.method, batches)["accuracy"]
    print(f"{run}: trained {100 * trained:.2f}%, rounded delays {100 * rounded:.2f}%; positions within 0.25 of a "
          f"half step: {half} of {total}")
