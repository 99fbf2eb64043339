#!/usr/bin/env bash
# A/B of deepspike before (0d32fc3, /work/wt/old) and after the refactor (main), interleaved, one run each round.
set -u
OUT=/work/main/benchmarks/results/refactor_ab
mkdir -p $OUT
PY=/work/main/.venv/bin/python
for round in 1 2; do
  for side in old new; do
    if [ $side = old ]; then ROOT=/work/wt/old; else ROOT=/work/main; fi
    PYTHONPATH=$ROOT/src $PY $ROOT/benchmarks/bench_rate.py --frameworks ann,deepspike --configs lenet:25,vgg:4 \
      --steps 10 --json $OUT/rate_${side}_r${round}.json > $OUT/rate_${side}_r${round}.md 2>$OUT/rate_${side}_r${round}.err
    PYTHONPATH=$ROOT/src $PY $ROOT/benchmarks/bench_ttfs_net.py --steps 20 > $OUT/ttfsnet_${side}_r${round}.md 2>$OUT/ttfsnet_${side}_r${round}.err
  done
done
echo done > $OUT/DONE
