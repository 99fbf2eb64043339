#!/usr/bin/env bash
# Session 34: analyses of the two wta_stdp Fashion-MNIST runs (first 1,000 test images), and one compare table of
# them with the session-31 Fashion-MNIST row nets (seed 0), priced with and without the neurons' own updates.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=benchmarks/results/session34
for n in 400 100; do
  OMP_NUM_THREADS=1 .venv/bin/deepspike analyze runs/wta_fmnist_$n --out $out/wta_fmnist_${n}_analysis --limit 1000
done
OMP_NUM_THREADS=1 .venv/bin/deepspike compare $out/wta_fmnist_400_analysis/analysis.json \
  $out/wta_fmnist_100_analysis/analysis.json runs/s31_fmrows_lif_seed0 runs/s31_fmrows_recurrent_lif_seed0 \
  runs/s31_fmrows_psn_seed0 runs/s31_fmrows_masked8_seed0 runs/s31_fmrows_sliding8_seed0 --limit 1000 \
  > $out/compare_costs.md
