#!/bin/bash
# NDA-style augmentation on the emulated digits event frames (digits_events, T = 8, 2 x 14 x 14): none / NDA (one of
# roll 2 px, rotate 15 deg, shear 15 deg per sample) / NDA plus event drops (p = 0.2) / MixUp (alpha 0.4) / CutMix
# (alpha 1); one torch thread per run.
# Run from the repository root: SEEDS="0 1 2" NAME=conv MODEL="model.name=scnn_digits" EPOCHS=60 bash run_nda.sh
# ($OPTS, if set, overrides settings of BASE, e.g. OPTS="method.readout=membrane optim.lr=0.003")
set -e
source "$(dirname "$0")/train_once.sh"
BASE="method.name=stbp method.timesteps=8 method.encoder=frames method.loss=ce data.name=digits_events
data.normalize=false data.val_fraction=0.1 optim.name=adam optim.lr=0.001 train.progress=false"
NDA="data.augment.roll=2 data.augment.rotate=15 data.augment.shear=15 data.augment.one_of=true"
BASE="$BASE $MODEL $OPTS"
SETTINGS=("none=" "nda=$NDA" "nda_drop=$NDA data.augment.drop_event=0.2" "mixup=data.augment.mixup=0.4"
          "cutmix=data.augment.cutmix=1.0")
run_settings "$NAME" "$EPOCHS"
