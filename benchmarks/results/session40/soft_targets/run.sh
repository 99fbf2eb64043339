#!/usr/bin/env bash
# Soft targets of four digits teachers (docs/methods/distillation.md): stbp with the rate readout (mse), the membrane
# readout with mse and with ce, and the ANN of the same one-hidden-layer-of-64 shape; 40 epochs, seed 0, T = 4.
# Usage: bash benchmarks/results/session40/soft_targets/run.sh OUT_DIR   (about 1 minute)
set -euo pipefail
out=${1:?usage: run.sh OUT_DIR}
here=$(cd "$(dirname "$0")/../../../.." && pwd)
ds="$here/.venv/bin/deepspike"
export OMP_NUM_THREADS=1 PYTHONPATH="$here/src"
common=(model.name=mlp 'model.args={hidden: [64]}' data.name=digits train.epochs=40 train.batch_size=64 train.seed=0)
stbp=(method.name=stbp method.timesteps=4)
"$ds" train "${stbp[@]}" method.readout=rate "${common[@]}" --out "$out/rate_mse" --no-progress > /dev/null
"$ds" train "${stbp[@]}" method.readout=membrane "${common[@]}" --out "$out/membrane_mse" --no-progress > /dev/null
"$ds" train "${stbp[@]}" method.readout=membrane method.loss=ce "${common[@]}" --out "$out/membrane_ce" --no-progress \
  > /dev/null
"$ds" train method.name=ann "${common[@]}" --out "$out/ann" --no-progress > /dev/null
for run in rate_mse membrane_mse membrane_ce ann; do
  "$here/.venv/bin/python" "$here/benchmarks/distill_soft_targets.py" "$out/$run" --temperatures 4,2,1 \
    --json "$out/$run.json"
done
