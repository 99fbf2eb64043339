#!/bin/bash
# Sourced by this folder's run_*.sh: train_once OUT EPOCHS ARG... trains one run into OUT with one torch thread,
# skips a run that finished its EPOCHS, and resumes one that was cut (exact resume, checkpoint every epoch).
train_once() {
  local out=$1 epochs=$2
  shift 2
  if [ -f "$out/summary.json" ] && grep -q "\"epochs\": $epochs" "$out/summary.json"; then return; fi
  local resume=""
  [ -f "$out/checkpoint.pt" ] && resume="--resume"
  OMP_NUM_THREADS=1 .venv/bin/deepspike train --out "$out" $resume "$@" train.epochs="$epochs"
}

# run_settings PREFIX EPOCHS: for every seed of $SEEDS and every entry NAME=ARGS of the array SETTINGS, in order,
# train_once runs/s26_PREFIX_NAME_seedSEED with $BASE, ARGS and train.seed=SEED.
run_settings() {
  local prefix=$1 epochs=$2 seed entry
  for seed in $SEEDS; do
    for entry in "${SETTINGS[@]}"; do
      train_once "runs/s26_${prefix}_${entry%%=*}_seed$seed" "$epochs" $BASE ${entry#*=} train.seed="$seed"
    done
  done
}
