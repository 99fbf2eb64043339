#!/usr/bin/env bash
# Session 41: run `python ARGS...` on the deepspike source tree of REV, one thread.
#   benchmarks/results/session41/at_rev.sh REV script.py [args...]
# REV "HEAD" is this checkout's src/ as it stands (working tree); any other revision is checked out into a temporary
# git worktree under /tmp, removed afterwards. The folder of this script is on PYTHONPATH too (peak_rss.py).
set -euo pipefail
rev=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
if [ "$rev" = HEAD ]; then
  src=$repo/src
  echo "# tree: HEAD $(git -C "$repo" rev-parse --short HEAD), working tree ($(git -C "$repo" status --short src | wc -l) changed files under src)"
else
  tree=/tmp/s41_tree.$$
  git -C "$repo" worktree add -q --detach "$tree" "$rev"
  trap 'git -C "$repo" worktree remove --force "$tree"' EXIT
  src=$tree/src
  echo "# tree: $rev = $(git -C "$repo" rev-parse --short "$rev")"
fi
OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=$src:$here "$repo/.venv/bin/python" "$@"
