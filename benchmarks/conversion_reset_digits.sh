#!/usr/bin/env bash
# Reset to zero against reset by subtraction for max-norm conversion on digits (docs/methods/conversion.md):
# trains the batch-norm VGG- and ResNet-style ANNs of configs/ann_fmnist_{vgg,resnet}_qcfs.yaml on digits (QCFS, L = 4,
# and plain ReLU), converts each with `--norm max` and both resets (Poisson input, spike-count readout, 64 calibration
# images, T = 1024, all 360 test images) and writes the accuracy at T = 32, 128, 256, 1024 as a Markdown table.
# Usage: bash benchmarks/conversion_reset_digits.sh OUT_DIR   (about 20 minutes on 2 cores)
# Smaller runs (the test's): NETS="vgg" ACTIVATIONS="relu" EPOCHS=1 TIMESTEPS=4 TABLE_STEPS="2 4" bash ... OUT_DIR
set -euo pipefail
out=${1:?usage: conversion_reset_digits.sh OUT_DIR}
nets=${NETS:-vgg resnet}
activations=${ACTIVATIONS:-qcfs relu}
epochs=${EPOCHS:-30}
timesteps=${TIMESTEPS:-1024}
columns=${TABLE_STEPS:-32 128 256 1024}
here=$(cd "$(dirname "$0")/.." && pwd)
ds="${DEEPSPIKE:-$here/.venv/bin/deepspike}"
mkdir -p "$out"
export OMP_NUM_THREADS=1
table="$out/conversion_reset_digits.md"
{
  printf '| ANN | ANN accuracy | reset |'; for t in $columns; do printf ' T = %s |' "$t"; done; echo
  printf '|---|---|---|'; for t in $columns; do printf -- '---|'; done; echo
} > "$table.tmp"
for net in $nets; do
  for act in $activations; do
    run="$out/${net}_${act}"
    [ -f "$run/summary.json" ] || "$ds" train "$here/configs/ann_fmnist_${net}_qcfs.yaml" data.name=digits 'data.augment={}' \
      train.epochs=$epochs train.batch_size=64 method.activation=$act --out "$run" --no-progress > "$run.log" 2>&1
    for reset in zero subtract; do
      snn="${run}_max_$reset"
      [ -f "$snn/summary.json" ] || "$ds" convert "$run" --norm max --reset $reset --timesteps $timesteps --calib-samples 64 \
        --out "$snn" --quiet > "$snn.log" 2>&1
      python3 - "$run" "$snn" "$net" "$act" "$reset" "$columns" >> "$table.tmp" <<'PY'
import csv, json, sys
run, snn, net, act, reset, columns = sys.argv[1:]
acc = {int(r["timesteps"]): float(r["accuracy"]) for r in csv.DictReader(open(f"{snn}/accuracy_vs_timesteps.csv"))}
ann = json.load(open(f"{run}/summary.json"))["test_accuracy"]
cells = " | ".join(f"{100 * acc[t]:.2f}%" for t in map(int, columns.split()))
print(f"| {net} {act} | {100 * ann:.2f}% | {reset} | {cells} |")
PY
    done
  done
done
mv "$table.tmp" "$table"
cat "$table"
