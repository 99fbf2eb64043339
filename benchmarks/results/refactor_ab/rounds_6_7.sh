#!/usr/bin/env bash
set -u
OUT=/work/main/benchmarks/results/refactor_ab
PY=/work/main/.venv/bin/python
for round in 6 7; do
  for side in old mid new; do
    case $side in old) ROOT=/work/wt/old;; mid) ROOT=/work/wt/mid;; new) ROOT=/work/main;; esac
    PYTHONPATH=$ROOT/src $PY $ROOT/benchmarks/bench_ttfs_net.py --steps 20 > $OUT/ttfsnet_${side}_r${round}.md 2>$OUT/ttfsnet_${side}_r${round}.err
    PYTHONPATH=$ROOT/src $PY $ROOT/benchmarks/bench_rate.py --frameworks deepspike --configs vgg:4 \
      --steps 10 --json $OUT/rate_${side}_r${round}.json > $OUT/rate_${side}_r${round}.md 2>$OUT/rate_${side}_r${round}.err
  done
done
echo done > $OUT/DONE3
