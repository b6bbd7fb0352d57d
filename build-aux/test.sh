#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The project's test command:
#
#   build-aux/test.sh [extra `meson test` arguments]
#
# Installs missing build dependencies (build-aux/deps.sh), configures the
# build directory $BUILDDIR (default: _build) with -Dwerror=true (and
# -Ddocumentation=true when gi-docgen is available), builds, runs every test
# suite, then checks an installed copy (build-aux/install-check.sh).
#
# The last line printed is "N passed, N failed": the meson tests plus the
# install check, counted as one. Timeouts count as failures. The exit status
# is non-zero if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
. build-aux/test-summary.sh

BUILDDIR=${BUILDDIR:-_build}
export BUILDDIR

log=$(mktemp "${TMPDIR:-/tmp}/lsock-test.XXXXXX")
trap 'rm -f "$log"' EXIT

die ()
{
  echo "test.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

build-aux/deps.sh || die "installing dependencies failed"

setup_args=(-Dwerror=true)
if command -v gi-docgen >/dev/null 2>&1; then
  setup_args+=(-Ddocumentation=true)
else
  setup_args+=(-Ddocumentation=false)
  echo "test.sh: gi-docgen not found; not building the documentation"
fi

if [ -f "$BUILDDIR/meson-private/coredata.dat" ]; then
  meson setup --reconfigure "$BUILDDIR" "${setup_args[@]}" \
    || die "meson setup --reconfigure $BUILDDIR failed (if meson asks for it: rm -rf $BUILDDIR)"
else
  meson setup "$BUILDDIR" "${setup_args[@]}" || die "meson setup failed"
fi

meson compile -C "$BUILDDIR" || die "the build failed"

test_rc=0
meson test -C "$BUILDDIR" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log" \
  || test_rc=$?
read -r passed failed skipped < <(meson_test_counts "$log")
if [ "$test_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "test.sh: meson test exited with status $test_rc" >&2
  failed=1
fi

install_rc=0
build-aux/install-check.sh || install_rc=$?
if [ "$install_rc" -eq 0 ]; then
  passed=$((passed + 1))
else
  echo "test.sh: build-aux/install-check.sh failed" >&2
  failed=$((failed + 1))
fi

echo "test.sh: meson test exit $test_rc, $skipped skipped; install check exit $install_rc"
echo "$passed passed, $failed failed"
[ "$test_rc" -eq 0 ] && [ "$install_rc" -eq 0 ] && [ "$failed" -eq 0 ]
