#!/usr/bin/env bash
# Issue 20 on full Fashion-MNIST: ReLU ANNs -> exact single-spike TTFS nets (deepspike convert --to ttfs),
# fine-tuning through the closed form, and the comparison with the other methods' nets (deepspike compare).
# Long (about 45 min on 2 cores, most of it training the ANNs); each step is skipped when its run exists.
# Results: benchmarks/results/ttfs_conversion/ (summaries and the comparison table).
# Usage: bash benchmarks/ttfs_conversion_fmnist.sh [RUNS_DIR (default runs)]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-runs}"
DS=".venv/bin/deepspike"
OUT="benchmarks/results/ttfs_conversion"
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
train() { test -f "$2/summary.json" || $DS train "$1" --out "$2" "${@:3}"; }
convert() { test -f "$2/summary.json" || $DS convert "$1" --to ttfs --out "$2" --threads 1 --quiet > /dev/null; }

train configs/ann_fmnist_fc1000.yaml "$RUNS/ann_fmnist_fc1000"            # zhang2021's FC 784-1000-10 shape
train configs/ann_fmnist_vgg.yaml "$RUNS/ann_fmnist_vgg"                  # sengupta2019-style VGG (no BN)
train configs/ann_fmnist_vgg6_max.yaml "$RUNS/ann_fmnist_vgg6_max"        # 6 conv layers, BN, max pooling
for net in fc1000 vgg vgg6_max; do
  convert "$RUNS/ann_fmnist_$net" "$RUNS/ttfs_conv_$net"
  cp "$RUNS/ttfs_conv_$net/summary.json" "$OUT/convert_$net.json"
  cp "$RUNS/ttfs_conv_$net/windows.json" "$OUT/windows_$net.json"
done
# Fine-tuning through the closed form, from the conversion (plain, and with the spike and latency costs).
train configs/ttfs_window_fmnist_fc1000.yaml "$RUNS/ttfs_ft_fc1000" method.init_from="$RUNS/ttfs_conv_fc1000"
train configs/ttfs_window_fmnist_fc1000.yaml "$RUNS/ttfs_ft_fc1000_sparse" method.init_from="$RUNS/ttfs_conv_fc1000" \
  method.spike_cost=2.0 method.latency_cost=0.1
train "$RUNS/ttfs_conv_vgg/config.yaml" "$RUNS/ttfs_ft_vgg_sparse" method.init_from="$RUNS/ttfs_conv_vgg" \
  method.spike_cost=6.0 train.epochs=5 optim.lr=0.0002
# The capped-L1 spike cost (pushes only weakly active neurons to silence): below 0.5 spikes per neuron.
train "$RUNS/ttfs_conv_vgg/config.yaml" "$RUNS/ttfs_ft_vgg_cap_s05" method.init_from="$RUNS/ttfs_conv_vgg" \
  method.spike_cost=0.5 method.spike_cost_cap=0.1 train.epochs=5 optim.lr=0.0001
for run in ttfs_ft_fc1000 ttfs_ft_fc1000_sparse ttfs_ft_vgg_sparse ttfs_ft_vgg_cap_s05; do cp "$RUNS/$run/summary.json" "$OUT/$run.json"; done
# Beside the other methods' Fashion-MNIST nets, all on the 10,000 test images: zhou2021 (ttfs) and zhang2021
# (stdbp) nets and the wu2019 (stbp) net of the pretrained zoo (benchmarks/make_zoo.py trains them into
# RUNS/zoo_ttfs, RUNS/zoo_stdbp; RUNS/tg_fmnist_bptt is configs/stbp_fmnist_temporal_grad.yaml), and the QCFS rate
# conversion (benchmarks/qcfs_fmnist.sh: RUNS/fmnist_vgg_qcfs_snn). Runs that are missing are left out.
runs=()
for run in ttfs_conv_fc1000 ttfs_ft_fc1000_sparse ttfs_conv_vgg ttfs_ft_vgg_sparse ttfs_ft_vgg_cap_s05 ttfs_conv_vgg6_max zoo_ttfs zoo_stdbp \
           tg_fmnist_bptt fmnist_vgg_qcfs_snn; do
  if test -f "$RUNS/$run/checkpoint.pt"; then runs+=("$RUNS/$run"); else echo "compare: $RUNS/$run missing, left out"; fi
done
$DS compare "${runs[@]}" --limit 10000 --out "$OUT/compare.md"
