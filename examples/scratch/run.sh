#!/usr/bin/env bash
# Scratch on the target's /tmp, only the result on the head node.
set -euo pipefail
MRC=${1:?usage: run.sh MRC_BINARY HOST}; HOST=${2:?usage: run.sh MRC_BINARY HOST}
work=$(mktemp -d "${WORKDIR:-${TMPDIR:-/tmp}}/mrc-scratch.XXXXXX")
cd "$work"
"$MRC" "$HOST" sh -c '
  s=$(mktemp -d /tmp/job-scratch.XXXXXX)
  head -c 256M /dev/zero | tr "\0" "x" > "$s/big.dat"      # 256 MiB on the target only
  { wc -c < "$s/big.dat"; df -P "$s" | tail -1 | cut -c1-20; } > result.txt
  rm -rf "$s"'
size=$(head -1 result.txt)
used=$(du -sk . | cut -f1)
if [ "$size" = 268435456 ] && [ "$used" -lt 1024 ]; then
  echo "PASS: 256 MiB scratch stayed on $HOST; export holds ${used} KiB: $(ls)"
else
  echo "FAIL: result '$size', export uses ${used} KiB"; exit 1
fi
