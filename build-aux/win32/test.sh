#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Cross-builds lsock-gobject for Windows x64 and runs its tests under Wine:
#
#   build-aux/win32/test.sh [extra `meson test` arguments]
#
# 1. build-aux/win32/build-sysroot.sh: the toolchain, Wine and a GLib
#    sysroot, cached under a key derived from the versions (a few minutes
#    the first time, seconds after);
# 2. meson setup $BUILDDIR (default _build-win64) with the cross file and the
#    Wine exe_wrapper, -Dwerror=true, tests and the lsock tool;
# 3. meson test, every test program through Wine.
#
# The last line printed is "N passed, N failed". Tests Wine cannot run
# faithfully report themselves incomplete (TAP "# TODO"), which meson counts
# as passed; their reasons are in the log.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
. build-aux/test-summary.sh

BUILDDIR=${BUILDDIR:-_build-win64}

log=$(mktemp "${TMPDIR:-/tmp}/lsock-win32-test.XXXXXX")
trap 'rm -f "$log"' EXIT

die ()
{
  echo "win32/test.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

sysroot_dir=$(build-aux/win32/build-sysroot.sh | tail -n 1) || die "building the sysroot failed"
[ -f "$sysroot_dir/x86_64-w64-mingw32.ini" ] || die "no cross file in '$sysroot_dir'"

# One Wine prefix for the build (created on first use, about 10 s); a
# wineserver shared by every test program of the run.
export WINEPREFIX=${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/lsock-gobject/wine64}
export WINEDEBUG=${WINEDEBUG:--all}
mkdir -p "$(dirname "$WINEPREFIX")"

setup_args=(--cross-file "$sysroot_dir/x86_64-w64-mingw32.ini"
            --cross-file "$sysroot_dir/wine.ini"
            -Dwerror=true -Dintrospection=disabled -Dvapi=disabled
            -Ddocumentation=false -Dtests=true -Dtools=true)

# A build directory made against another sysroot (a new cache key) cannot be
# reconfigured onto this one: start it afresh
if [ -f "$BUILDDIR/meson-private/coredata.dat" ] &&
   [ "$(cat "$BUILDDIR/.lsock-sysroot" 2>/dev/null)" != "$sysroot_dir" ]; then
  echo "win32/test.sh: $BUILDDIR was configured for another sysroot; recreating it"
  rm -rf "$BUILDDIR"
fi

if [ -f "$BUILDDIR/meson-private/coredata.dat" ]; then
  meson setup --reconfigure "$BUILDDIR" "${setup_args[@]}" >/dev/null \
    || die "meson setup --reconfigure $BUILDDIR failed (try: rm -rf $BUILDDIR)"
else
  meson setup "$BUILDDIR" "${setup_args[@]}" || die "meson setup failed"
fi

echo "$sysroot_dir" >"$BUILDDIR/.lsock-sysroot"

meson compile -C "$BUILDDIR" || die "the build failed"

test_rc=0
meson test -C "$BUILDDIR" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log" \
  || test_rc=$?
read -r passed failed skipped < <(meson_test_counts "$log")
if [ "$test_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "win32/test.sh: meson test exited with status $test_rc" >&2
  failed=1
fi

# What Wine could not check, from the TAP logs
grep -h '# TODO' "$BUILDDIR/meson-logs/testlog.txt" 2>/dev/null | sort -u \
  | sed 's/^/win32\/test.sh: incomplete under Wine: /' || true

wineserver -k 2>/dev/null || true

echo "win32/test.sh: meson test exit $test_rc, $skipped skipped"
echo "$passed passed, $failed failed"
[ "$test_rc" -eq 0 ] && [ "$failed" -eq 0 ]
