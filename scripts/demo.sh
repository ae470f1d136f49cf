#!/usr/bin/env bash
# Fresh Debian 12 → a job running under mrc: installs dependencies, builds,
# then runs the word-count example with `mrc local` (no SSH, no config).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec examples/wordcount/run.sh "$PWD/build/bin/mrc" local
