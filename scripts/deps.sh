#!/usr/bin/env bash
# Installs everything mrc needs to build and test on Debian 12 (idempotent:
# apt is only called when a package is missing).
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git
  libfuse3-dev fuse3 libssh-dev libzstd-dev libcli11-dev libspdlog-dev libfmt-dev
  libexpected-dev libgtest-dev libxxhash-dev
  openssh-server openssh-client sshfs iproute2 procps psmisc util-linux
  python3 python3-pytest
  libssl-dev libncurses-dev libtomlplusplus-dev nlohmann-json3-dev tmux man-db
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
