#!/usr/bin/env bash
# Distillation into a convolutional stbp student on digits: scnn_digits (T = 4, membrane readout, loss ce, 30 epochs),
# alone and taught by a batch-norm VGG-style ReLU ANN (weight 0.5, tau 2 and 4), seeds 0-2.
# Usage: bash benchmarks/results/session40/distill_conv/run.sh OUT_DIR TEACHER_RUN
# TEACHER_RUN: `deepspike train configs/ann_fmnist_vgg_qcfs.yaml data.name=digits 'data.augment={}' train.epochs=30
#   train.batch_size=64 method.activation=relu --out TEACHER_RUN` (benchmarks/conversion_reset_digits.sh's vgg_relu).
set -euo pipefail
out=${1:?usage: run.sh OUT_DIR TEACHER_RUN}
teacher=$(cd "${2:?usage: run.sh OUT_DIR TEACHER_RUN}" && pwd)
here=$(cd "$(dirname "$0")/../../../.." && pwd)
export OMP_NUM_THREADS=1
mkdir -p "$out"
student=(method.name=stbp method.timesteps=4 method.readout=membrane method.loss=ce model.name=scnn_digits
         data.name=digits data.normalize=true train.epochs=30 train.batch_size=64)
for seed in 0 1 2; do
  for kd in none 2 4; do
    run="$out/kd${kd}_seed$seed"
    [ -f "$run/summary.json" ] && continue
    extra=()
    [ "$kd" = none ] || extra=(train.distill_from="$teacher" train.distill_weight=0.5 train.distill_temperature=$kd)
    "$here/.venv/bin/deepspike" train "${student[@]}" train.seed=$seed "${extra[@]}" --out "$run" --no-progress \
      > "$run.log" 2>&1
    python3 -c "import json,sys; print(sys.argv[1], json.load(open(sys.argv[1] + '/summary.json'))['test_accuracy'])" "$run"
  done
done
