#!/usr/bin/env bash
# Word frequencies over a real corpus, computed on HOST, result on the head.
set -euo pipefail
MRC=${1:?usage: run.sh MRC_BINARY HOST}; HOST=${2:?usage: run.sh MRC_BINARY HOST}
work=$(mktemp -d "${WORKDIR:-${TMPDIR:-/tmp}}/mrc-wordcount.XXXXXX")
mkdir -p "$work/corpus/licenses" "$work/corpus/copyright"
cp -rL /usr/share/common-licenses/. "$work/corpus/licenses/"
for f in /usr/share/doc/*/copyright; do
  d=${f#/usr/share/doc/}; cp "$f" "$work/corpus/copyright/${d%%/*}" 2>/dev/null || true
done
cd "$work"
pipeline='find corpus -type f -print0 | sort -z | xargs -0 cat | tr -cs A-Za-z "\n" | tr A-Z a-z | sort | uniq -c | sort -k1,1nr -k2 | head -25'
"$MRC" "$HOST" sh -c "$pipeline > top-words.txt"
sh -c "$pipeline" > expected.txt
if cmp -s top-words.txt expected.txt && [ -s top-words.txt ]; then
  echo "PASS: $(du -sh corpus | cut -f1) corpus, $(find corpus -type f | wc -l) files; top words:"
  head -5 top-words.txt
else
  echo "FAIL: top-words.txt differs from the local result"; diff top-words.txt expected.txt | head; exit 1
fi
