#!/usr/bin/env bash
# Session 41: teacher_rss.py on 58f8365^ (the teacher read its data again) and this checkout (HEAD), three processes
# each; writes teacher_rss.txt beside this script. MALLOC_MMAP_THRESHOLD_ fixes glibc's mmap threshold at 128 KiB (a
# freed buffer leaves the resident set), so the second read's buffers are counted, not reused from the first's.
#   benchmarks/results/session41/teacher_rss/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MALLOC_MMAP_THRESHOLD_=131072
{
  echo "# $(date -u '+%F %T UTC'); uptime:$(uptime)"
  for rev in 58f8365^ HEAD; do
    for _ in 1 2 3; do "$here/../at_rev.sh" "$rev" "$here/teacher_rss.py" | grep -v '^# tree' | sed "s/^/$rev /"; done
  done
} 2>&1 | tee "$here/teacher_rss.txt"
