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
# train_once runs/SESSION_PREFIX_NAME_seedSEED ($SESSION: s26 unless set) with $BASE, ARGS and train.seed=SEED.
run_settings() {
  local prefix=$1 epochs=$2 seed entry
  for seed in $SEEDS; do
    for entry in "${SETTINGS[@]}"; do
      train_once "runs/${SESSION:-s26}_${prefix}_${entry%%=*}_seed$seed" "$epochs" $BASE ${entry#*=} train.seed="$seed"
    done
  done
}

# The recurrent net on digits read row by row (digits_rows: T = 8 rows of 8 pixels): 8 -> 128 (recurrent LIF) -> 10,
# membrane readout, Adam 1e-3, batch 32 (session 26's delta runs, session 27's population runs).
ROWS_BASE="method.name=stbp method.timesteps=8 method.loss=ce method.readout=membrane method.decay=0.9
method.threshold=0.5 model.name=rsnn model.args.hidden=[128] data.name=digits_rows data.val_fraction=0.1
optim.name=adam optim.lr=0.001 train.batch_size=32 train.progress=false"
