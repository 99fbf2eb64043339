"""Issue 22 ablation on Fashion-MNIST: loss (tet, ce, mse), normalisation (tdbn, tebn, bn, none) and neuron (lif,
plif, psn) of stbp.

Every row trains ``configs/stbp_fmnist_ablation.yaml`` (one epoch of 400 steps, T = 4) with its overrides,
then counts spikes per test image (``deepspike.api.spike_activity``, all 10,000 test images), and prints
a Markdown row: test accuracy, spikes per inference, training step time (train seconds / steps).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/issue22_ablation.py OUT_DIR [ROW ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deepspike import api

RECIPE = "configs/stbp_fmnist_ablation.yaml"
STEPS = 400
ROWS = {  # name: overrides; the name reads "<loss>-<norm>[-<neuron>]" (neuron lif unless named)
    "tet-tdbn": ["method.loss=tet", "method.norm=tdbn"],
    "tet_lambda0.05-tdbn": ["method.loss=tet", "method.tet_lambda=0.05", "method.norm=tdbn"],
    "ce-tdbn": ["method.loss=ce", "method.norm=tdbn"],
    "mse-tdbn": ["method.loss=mse", "method.norm=tdbn"],
    "tet-tebn": ["method.loss=tet", "method.norm=tebn"],
    "tet-bn": ["method.loss=tet", "method.norm=bn"],
    "tet-none": ["method.loss=tet", "method.norm=none", "model.args.batch_norm=false"],
    "tet-tdbn-plif": ["method.loss=tet", "method.norm=tdbn", "method.neuron=plif"],
    "tet-tdbn-psn": ["method.loss=tet", "method.norm=tdbn", "method.neuron=psn"],
}


def run_row(out: Path, name: str) -> str:
    run = out / name
    summary = api.train(RECIPE, run, [*ROWS[name], "train.progress=false"])
    spikes = api.spike_activity(run).spikes_per_sample
    loss, norm, neuron = (name.split("-") + ["lif"])[:3]
    step_ms = 1000 * summary["train_seconds"] / STEPS
    row = f"| {loss} | {norm} | {neuron} | {100 * summary['test_accuracy']:.2f} | {spikes:,.0f} | {step_ms:.0f} |"
    (run / "ablation_row.json").write_text(json.dumps({"row": row, **summary, "spikes": spikes}))
    return row


if __name__ == "__main__":
    out_dir, names = Path(sys.argv[1]), sys.argv[2:] or list(ROWS)
    print("| loss | norm | neuron | test acc. (%) | spikes / image | step (ms) |\n|---|---|---|---|---|---|")
    for row_name in names:
        print(run_row(out_dir, row_name), flush=True)
