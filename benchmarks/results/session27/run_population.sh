#!/bin/bash
# Population coding of digits read row by row (digits_rows: T = 8 rows of 8 pixels in [0, 1]): the analog rows
# (encoder frames) against each pixel spread over P Gaussian fields on [0, 1] (width 1/1.5 spacings), as currents
# (P = 4, 8) or Bernoulli spikes (P = 4, 8); recurrent net (8 or 8 P inputs) -> 128 (recurrent LIF) -> 10, the
# settings of session 26's delta runs, 30 epochs, seeds from $SEEDS. One torch thread. Run from the repository root.
set -e
source "$(dirname "$0")/../session26/train_once.sh"
BASE=$ROWS_BASE
SETTINGS=("frames=method.encoder=frames"
          "pop4=method.encoder=population method.population_size=4"
          "pop8=method.encoder=population method.population_size=8"
          "pop4_spikes=method.encoder=population method.population_size=4 method.population_spikes=true"
          "pop8_spikes=method.encoder=population method.population_size=8 method.population_spikes=true")
SESSION=s27 run_settings rows 30
