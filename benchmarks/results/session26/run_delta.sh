#!/bin/bash
# Delta coding of digits read row by row (digits_rows: T = 8 rows of 8 pixels in [0, 1], 16 levels): the analog rows
# (encoder frames) against ON/OFF delta spikes, step rule and level crossing, threshold 0.25; recurrent net
# 8 -> 128 (recurrent LIF) -> 10, 30 epochs, seeds from $SEEDS. One torch thread. Run from the repository root.
set -e
source "$(dirname "$0")/train_once.sh"
BASE=$ROWS_BASE
SETTINGS=("frames=method.encoder=frames"
          "delta_step=method.encoder=delta method.delta_threshold=0.25 method.delta_mode=step"
          "delta_level=method.encoder=delta method.delta_threshold=0.25 method.delta_mode=level")
run_settings rows 30
