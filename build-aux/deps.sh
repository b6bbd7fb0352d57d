#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install, from Debian's archive, everything needed to build lsock-gobject
# and run every test suite on Debian 12, as root.
#
# apt-get runs only when a package is missing; `apt-get update` runs only when
# the package lists are empty or the first install attempt fails.
set -euo pipefail

packages=(
  build-essential gcc pkg-config meson ninja-build
  libglib2.0-dev libglib2.0-bin
  gobject-introspection libgirepository1.0-dev gir1.2-glib-2.0
  valac gjs python3-gi python3-pytest socat systemd gettext gi-docgen
  clang libclang-rt-14-dev valgrind git
  libuv1-dev
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "deps.sh: installing: ${missing[*]}"

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -E)
  else
    echo "deps.sh: not root and no sudo: install these by hand: ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=()
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

apt_update() {
  echo "deps.sh: apt-get update"
  "${SUDO[@]}" apt-get update -q
}

lists_empty() {
  ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

if lists_empty; then
  apt_update
fi

if ! "${SUDO[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}" </dev/null; then
  echo "deps.sh: install failed; refreshing package lists and retrying" >&2
  apt_update
  "${SUDO[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}" </dev/null
fi

# Check that everything is now really there.
still=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || still+=("$pkg")
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "deps.sh: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "deps.sh: installed ${#missing[@]} package(s)"
