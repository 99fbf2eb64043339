#!/usr/bin/env bash
# Session 41: time_partition.py on the tree of session 41's base (ddb9e35: the splits were copies), of ab8e3dc (the
# in-place cycle walk, one Python step a row) and on this checkout (HEAD: small rows through a bounded buffer);
# writes time_partition.txt beside this script. Run it with nothing else running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
{
  echo "# $(date -u '+%F %T UTC'); uptime:$(uptime)"
  for rev in ddb9e35 ab8e3dc HEAD; do
    "$here/../at_rev.sh" "$rev" "$here/time_partition.py" | sed "s/^/$rev /"
  done
} > "$here/time_partition.txt"
cat "$here/time_partition.txt"
