#!/usr/bin/env bash
# Session 42: the event loaders' memory checks against the peaks they check, at the session's start (6869e3f) and
# on this checkout (HEAD); writes output.txt beside this script. glibc's mmap threshold is fixed at 128 KiB so that
# freed buffers leave the resident set. Usage: bash benchmarks/results/session42/event_memory_checks/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
at_rev="$repo/benchmarks/results/session41/at_rev.sh"
{
  for rev in 6869e3f HEAD; do
    for case in "split" "stats" "emulation 4 1 1" "emulation 32 8 1"; do
      # shellcheck disable=SC2086
      MALLOC_MMAP_THRESHOLD_=131072 bash "$at_rev" "$rev" "$here/event_memory_checks.py" $case
    done
  done
} > "$here/output.txt" 2>&1
cat "$here/output.txt"
