#!/usr/bin/env bash
# Configures and builds mrc into ./build (binaries in build/bin).
# Extra arguments go to cmake's configure step (e.g. -DMRC_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
ninja -C build
