#!/bin/bash
# The parallel spiking neurons on images read row by row (fashion_mnist_rows: T = 28 rows of 28 pixels, analog
# rows through the frames encoder), rows -> 128 -> 10, against session 26's feed-forward and recurrent LIF nets on
# the same settings (LIF decay 0.9 threshold 0.5, membrane readout, cross-entropy, Adam 1e-3, batch 64, 10 epochs,
# 10% validation split); one torch thread per run, checkpoint every epoch (a cut run resumes exactly).
#   SEEDS="0 1 2" bash benchmarks/results/session31/run_psn_rows.sh       (from the repository root)
set -e
source "$(dirname "$0")/../session26/train_once.sh"
SESSION=s31
BASE="method.name=stbp method.timesteps=28 method.encoder=frames method.loss=ce method.readout=membrane
method.decay=0.9 method.threshold=0.5 model.args.hidden=[128] data.name=fashion_mnist_rows data.val_fraction=0.1
optim.name=adam optim.lr=0.001 train.batch_size=64 train.progress=false"
FF="model.name=dsnn model.args.delays=1"
SETTINGS=("lif=$FF" "psn=$FF method.neuron=psn" "masked8=$FF method.neuron=masked_psn method.psn_order=8"
          "sliding8=$FF method.neuron=sliding_psn method.psn_order=8"
          "sliding28=$FF method.neuron=sliding_psn method.psn_order=28"
          "recurrent_lif=model.name=rsnn" "recurrent_sliding8=model.name=rsnn method.neuron=sliding_psn method.psn_order=8")
run_settings fmrows 10
