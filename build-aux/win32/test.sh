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
# 2. a Wine prefix of its own, see start_wine below;
# 3. meson setup $BUILDDIR (default _build-win64) with the cross file and the
#    Wine exe_wrapper, -Dwerror=true, tests and the lsock tool;
# 4. meson test, every test program through Wine; then every Wine process
#    of the prefix is ended, and a prefix made for the run is removed.
#
# The prefix is a fresh one in a temporary directory, unless $WINEPREFIX
# names one: then that is used and kept, and whatever Wine runs there is
# ended first. Wine's own output goes to $BUILDDIR/meson-logs/wine.log.
#
# The last line printed is "N passed, N failed". Tests Wine cannot run
# faithfully report themselves incomplete (TAP "# TODO"), which meson counts
# as passed; their reasons are in the log.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
. build-aux/test-summary.sh

BUILDDIR=${BUILDDIR:-_build-win64}

workdir=$(mktemp -d "${TMPDIR:-/tmp}/lsock-win32-test.XXXXXX") || exit 1
log=$workdir/meson-test.log
wine_log=$workdir/wine.log
own_prefix=0
wine_started=0

cleanup ()
{
  if [ "$wine_started" -eq 1 ]; then
    wineserver -k >>"$wine_log" 2>&1 || true
    wineserver -w >>"$wine_log" 2>&1 || true
  fi
  if [ -d "$BUILDDIR/meson-logs" ]; then
    cp "$wine_log" "$BUILDDIR/meson-logs/wine.log" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die ()
{
  echo "win32/test.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

# The Wine prefix, and a wineserver that serves the whole run.
#
# A prefix is ready only once wineboot has run in it, which the first
# program run there starts by itself (a new prefix takes about 10 s), and
# two tests starting at once in an empty prefix race to create it. That
# first program also starts the wineserver and Wine's system processes
# (services.exe, winedevice.exe, explorer.exe...), and every Wine process
# inherits the stderr of the one that started it: when that is a test,
# meson sees the test's stderr open until the last of them exits, and the
# finished test runs into its timeout. So the prefix is set up here before
# meson runs anything in it (meson setup runs a program too): a persistent
# wineserver (-p: it does not stop between test programs), then wineboot,
# with their output in the log. Some are started later, though, by the
# test that needs them: explorer.exe, which runs the desktop, quits a
# second after its last other user does. So each test program's stderr
# goes to a file of its own, copied to the real one when it exits: the
# cached wine-wrap.sh runs the `wine` it finds first in PATH, which is the
# one written here.
start_wine ()
{
  local t=$SECONDS

  if [ -z "${WINEPREFIX:-}" ]; then
    WINEPREFIX=$workdir/prefix
    own_prefix=1
  fi
  mkdir -p "$WINEPREFIX" || return 1  # the wineserver starts in it
  export WINEPREFIX
  export WINEDEBUG=${WINEDEBUG:--all}
  export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
  unset DISPLAY

  wine_started=1
  if [ "$own_prefix" -eq 0 ]; then
    wineserver -k >>"$wine_log" 2>&1
    wineserver -w >>"$wine_log" 2>&1
  fi
  wineserver -p </dev/null >>"$wine_log" 2>&1 &&
    wineboot --init </dev/null >>"$wine_log" 2>&1 || return 1

  local wine
  wine=$(command -v wine) && mkdir "$workdir/bin" "$workdir/stderr" || return 1
  cat >"$workdir/bin/wine" <<WINE || return 1
#!/bin/sh
# $wine, with the program's stderr through a file (see build-aux/win32/test.sh)
err=\$(mktemp "$workdir/stderr/XXXXXX") || exit 1
trap 'cat "\$err" >&2; rm -f "\$err"; exit 143' TERM
"$wine" "\$@" 2>"\$err"
rc=\$?
cat "\$err" >&2
rm -f "\$err"
exit \$rc
WINE
  chmod +x "$workdir/bin/wine" || return 1
  PATH=$workdir/bin:$PATH
  echo "win32/test.sh: Wine prefix $WINEPREFIX ready in $(( SECONDS - t )) s"
}

sysroot_dir=$(build-aux/win32/build-sysroot.sh | tail -n 1) || die "building the sysroot failed"
[ -f "$sysroot_dir/x86_64-w64-mingw32.ini" ] || die "no cross file in '$sysroot_dir'"

if ! start_wine; then
  tail -n 20 "$wine_log" >&2
  die "could not set up the Wine prefix $WINEPREFIX"
fi

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

echo "win32/test.sh: meson test exit $test_rc, $skipped skipped"
echo "$passed passed, $failed failed"
[ "$test_rc" -eq 0 ] && [ "$failed" -eq 0 ]
