#!/bin/bash
# Memory of earlier steps on images read row by row: a feed-forward net (dsnn with delays=1), the same net with
# learnable synaptic delays on both layers (dsnn), and a recurrent net (rsnn); rows -> 128 -> 10, analog rows
# (encoder frames), LIF decay 0.9 threshold 0.5, membrane readout, cross-entropy, Adam 1e-3; one torch thread.
#   SEEDS="0 1 2" bash run_temporal.sh                      digits_rows: T = 8 rows of 8, delays 0-7, 30 epochs, batch 32
#   DATA=fashion_mnist_rows SEEDS=0 bash run_temporal.sh    T = 28 rows of 28, delays 0-13, 10 epochs, batch 64
# Run from the repository root.
set -e
source "$(dirname "$0")/train_once.sh"
if [ "${DATA:-digits_rows}" = fashion_mnist_rows ]; then
  STEPS=28 BATCH=64 EPOCHS=10 DELAYS=14 PREFIX=fmrows
else
  DATA=digits_rows STEPS=8 BATCH=32 EPOCHS=30 DELAYS=8 PREFIX=temporal
fi
BASE="method.name=stbp method.timesteps=$STEPS method.encoder=frames method.loss=ce method.readout=membrane
method.decay=0.9 method.threshold=0.5 model.args.hidden=[128] data.name=$DATA data.val_fraction=0.1
optim.name=adam optim.lr=0.001 train.batch_size=$BATCH train.progress=false"
SETTINGS=("feedforward=model.name=dsnn model.args.delays=1" "delays=model.name=dsnn model.args.delays=$DELAYS"
          "recurrent=model.name=rsnn")
run_settings "$PREFIX" "$EPOCHS"
