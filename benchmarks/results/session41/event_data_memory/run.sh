#!/usr/bin/env bash
# Session 41: event_data_memory.py on the tree before and after each event-data fix, on a base tree and on this
# checkout (HEAD), REPS processes a case (default 3); writes event_data_memory_<group>.txt beside this script.
#   benchmarks/results/session41/event_data_memory/run.sh [GROUP...]   # default: fixes base head
# Groups: fixes (1fed63d^/1fed63d split, 1560e22^/1560e22 stats, 32919c4^/32919c4 counts), base (every case on BASE,
# default ddb9e35, session 41's base), head (every case on this checkout's src/ as it stands).
# MALLOC_MMAP_THRESHOLD_ fixes glibc's mmap threshold at 128 KiB, so a freed buffer leaves the resident set and the
# peak is that of the live buffers (with the default dynamic threshold a freed buffer may stay resident and be
# counted again: split at HEAD gave 23-80 MiB from run to run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${BASE:-ddb9e35}
reps=${REPS:-3}
export MALLOC_MMAP_THRESHOLD_=131072
measure() {  # REV CASE
  for _ in $(seq "$reps"); do
    "$here/../at_rev.sh" "$1" "$here/event_data_memory.py" "$2" | grep -v '^# tree' | sed "s/^/$1 /"
  done
}
every_case() {  # REV
  for c in split stats counts loader_frames loader_counts; do measure "$1" "$c"; done
}
for group in "${@:-fixes base head}"; do
  for g in $group; do
    {
      echo "# $(date -u '+%F %T UTC'); uptime:$(uptime)"
      echo "# $(cd "$here" && git rev-parse --short HEAD), $(cd "$here" && git status --short ../../../../src | wc -l) changed files under src; torch $(PYTHONPATH= "$here/../../../../.venv/bin/python" -c 'import torch; print(torch.__version__)')"
      case $g in
        fixes) measure 1fed63d^ split; measure 1fed63d split; measure 1560e22^ stats; measure 1560e22 stats
               measure 32919c4^ counts; measure 32919c4 counts ;;
        base) every_case "$base" ;;
        head) every_case HEAD ;;
        *) echo "unknown group $g (fixes, base, head)"; exit 2 ;;
      esac
      echo "# done $(date -u '+%F %T UTC')"
    } 2>&1 | tee "$here/event_data_memory_$g.txt"
  done
done
