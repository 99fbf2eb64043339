#!/usr/bin/env bash
# Issue 21: low-latency conversion on full Fashion-MNIST (60k/10k), all 10,000 test images.
# Trains (or resumes) the QCFS and the plain ReLU ANN of the VGG- and ResNet-style recipes, then converts each
# with every applicable norm, the same neuron for all (direct input, reset by subtraction, v_0 = th/2, membrane
# readout, threshold-valued spikes) so that only the thresholds differ, T = 1..64.
# Usage: bash benchmarks/qcfs_fmnist.sh [vgg|resnet] [train|convert]   (one torch thread; hours on 2 CPU cores)
set -euo pipefail
net=${1:-vgg}
step=${2:-convert}
export OMP_NUM_THREADS=1
ds=.venv/bin/deepspike
runs=runs
neuron=(--encoding direct --reset subtract --initial-membrane 0.5 --readout membrane --spike-value threshold)
if [ "$step" = train ]; then
  $ds train configs/ann_fmnist_${net}_qcfs.yaml --out $runs/fmnist_${net}_qcfs
  $ds train configs/ann_fmnist_${net}_qcfs.yaml method.activation=relu --out $runs/fmnist_${net}_relu
  exit 0
fi
$ds convert $runs/fmnist_${net}_qcfs --norm qcfs,channel,max,spike --timesteps 64 --calib-timesteps 64 "${neuron[@]}" \
  --out $runs/fmnist_${net}_qcfs_snn --quiet
$ds convert $runs/fmnist_${net}_relu --norm channel,max,spike --timesteps 64 --calib-timesteps 64 "${neuron[@]}" \
  --out $runs/fmnist_${net}_relu_snn --quiet
