#!/usr/bin/env bash
# Builds src/ on HOST through mrc; runs the result on the head node.
set -euo pipefail
MRC=${1:?usage: run.sh MRC_BINARY HOST}; HOST=${2:?usage: run.sh MRC_BINARY HOST}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${WORKDIR:-${TMPDIR:-/tmp}}/mrc-c-build.XXXXXX")
cp -r "$here/src/." "$work/"
cd "$work"
"$MRC" "$HOST" make
test -x ./crcsum || { echo "FAIL: no crcsum binary on the head node"; exit 1; }
printf 123456789 > check.txt
out=$(./crcsum check.txt)
if [ "${out%% *}" = cbf43926 ]; then echo "PASS: built on $HOST, ran here: $out"; else echo "FAIL: got '$out'"; exit 1; fi
