#!/bin/bash
# Delta coding of digits read row by row (digits_rows: T = 8 rows of 8 pixels in [0, 1], 16 levels): the analog rows
# (encoder frames) against ON/OFF delta spikes, step rule and level crossing, threshold 0.25; recurrent net
# 8 -> 128 (recurrent LIF) -> 10, 30 epochs, seeds from $SEEDS. One torch thread. Run from the repository root.
set -e
source "$(dirname "$0")/train_once.sh"
BASE="method.name=stbp method.timesteps=8 method.loss=ce method.readout=membrane method.decay=0.9
method.threshold=0.5 model.name=rsnn model.args.hidden=[128] data.name=digits_rows data.val_fraction=0.1
optim.name=adam optim.lr=0.001 train.batch_size=32 train.progress=false"
SETTINGS=("frames=method.encoder=frames"
          "delta_step=method.encoder=delta method.delta_threshold=0.25 method.delta_mode=step"
          "delta_level=method.encoder=delta method.delta_threshold=0.25 method.delta_mode=level")
run_settings rows 30
