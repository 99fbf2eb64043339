#!/usr/bin/env bash
# Session 41: ttfs_causal_slope.py on 1782600^ (a float32 spike time could round onto its last causal input) and this
# checkout (HEAD); writes ttfs_causal_slope.txt beside this script.
#   benchmarks/results/session41/ttfs_causal_slope/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
{
  echo "# $(date -u '+%F %T UTC'); uptime:$(uptime)"
  for rev in 1782600^ HEAD; do
    "$here/../at_rev.sh" "$rev" "$here/ttfs_causal_slope.py" | sed "s/^/$rev /"
  done
  echo "# done $(date -u '+%F %T UTC'); uptime:$(uptime)"
} 2>&1 | tee "$here/ttfs_causal_slope.txt"
