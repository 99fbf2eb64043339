#!/bin/bash
# Quantised membranes (method.state_bits) on digits: the stbp conv net scnn_digits, T = 4, direct input, LIF
# decay 0.5 threshold 0.5 reset zero, membrane readout, cross-entropy, Adam 3e-3, levels on [-th, 1.2 th]
# (snnTorch's defaults), float membranes for comparison; 30 epochs, seeds from $SEEDS. One torch thread. Run from
# the repository root.
set -e
source "$(dirname "$0")/train_once.sh"
BASE="method.name=stbp method.timesteps=4 method.decay=0.5 method.threshold=0.5 method.loss=ce method.readout=membrane
model.name=scnn_digits data.name=digits data.val_fraction=0.1 optim.name=adam optim.lr=0.003
train.progress=false"
SETTINGS=("float=" "2=method.state_bits=2" "3=method.state_bits=3" "4=method.state_bits=4" "6=method.state_bits=6"
          "8=method.state_bits=8")
run_settings bits 30
