#!/bin/bash
# A/B: deepspike before (8bd2066) and after this session's kernel change, same cases, alternated.
# OLD: a worktree of 8bd2066 (`git worktree add $OLD 8bd2066`); run with the background training stopped.
cd /work/main
for round in 1 2 3; do
  for case in sew_resnet18:4 sew_resnet18_plif:4 vgg11:4; do
    for tree in old new; do
      if [ $tree = old ]; then PP=$OLD/src; else PP=/work/main/src; fi
      r=$(env PYTHONPATH=$PP MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776 .bench-venv/bin/python benchmarks/bench_rate.py --case deepspike:$case --warmup 1 --steps 3 2>/dev/null | tail -1)
      echo "$round $tree $case $r"
    done
  done
done
