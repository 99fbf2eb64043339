#!/usr/bin/env bash
# e-prop with and without the leaky readout on sequential digits (one 8-pixel row per step, T = 8): the recipe
# configs/stbp_fmnist_rows_alif_eprop.yaml (128 ALIF neurons, recurrent) on digits_rows, 30 epochs, seeds 0-2,
# train.eprop_readout_decay (kappa) 0 (memoryless readout), 0.5 and 0.8.
# Usage: bash benchmarks/results/session40/eprop_kappa/run.sh OUT_DIR   (about 10 minutes on 2 cores)
set -euo pipefail
out=${1:?usage: run.sh OUT_DIR}
here=$(cd "$(dirname "$0")/../../../.." && pwd)
export OMP_NUM_THREADS=1
mkdir -p "$out"
for seed in 0 1 2; do
  for kappa in 0 0.5 0.8; do
    run="$out/kappa${kappa}_seed$seed"
    [ -f "$run/summary.json" ] || "$here/.venv/bin/deepspike" train "$here/configs/stbp_fmnist_rows_alif_eprop.yaml" \
      data.name=digits_rows method.timesteps=8 train.epochs=30 train.seed=$seed train.eprop_readout_decay=$kappa \
      --out "$run" --no-progress > "$run.log" 2>&1
    python3 -c "import json,sys; print(sys.argv[1], json.load(open(sys.argv[1] + '/summary.json'))['test_accuracy'])" "$run"
  done
done
