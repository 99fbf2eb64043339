#!/usr/bin/env bash
# Session 34: what the converted IF neurons' own updates add to the energy of a converted net (digits, scnn_digits).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=runs/s34_convert
rm -rf $out
OMP_NUM_THREADS=1 .venv/bin/deepspike train --out $out/ann method.name=ann model.name=scnn_digits data.name=digits \
  train.epochs=20 train.progress=false train.seed=0
OMP_NUM_THREADS=1 .venv/bin/deepspike convert $out/ann --norm max,channel --timesteps 256 --quiet --out $out/snn
cp $out/snn/comparison.md benchmarks/results/session34/convert_updates_comparison.md
