#!/usr/bin/env bash
# Fresh Debian 12 → every test: installs dependencies, builds with -Werror,
# runs the unit tests and the end-to-end tests (real sshd, FUSE, network
# namespaces; needs root). Logs of failed e2e tests: build/e2e-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh -DMRC_WERROR=ON
cd build
ctest --output-on-failure --timeout 900 "$@"
