#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The README's first command: build lsock-gobject and watch clients in C,
# Python and GJS (and Vala, if it was built) talk to an echo service.
#
#   build-aux/demo.sh
#
# 1. installs missing build dependencies (build-aux/deps.sh; needs root or sudo),
# 2. configures and builds $BUILDDIR (default: _build; an existing one is reused),
# 3. starts `lsock listen --echo --verbose lsock-demo` in the background
#    ("lsock-demo" is a generic name: an abstract socket on Linux) and waits
#    until it answers a readiness probe (a connection that sends nothing,
#    announced as such: the service counts it as its connection 1),
# 4. runs each example client against it, showing what they exchanged and,
#    beside it, what the service logged meanwhile: lines prefixed
#    "client N (LANGUAGE):" are the client's, "service:" the service's,
# 5. stops the service with SIGTERM.
#
# It uses the uninstalled build ($BUILDDIR, with GI_TYPELIB_PATH and
# LD_LIBRARY_PATH set for it) and installs nothing but Debian packages.
#
# Exits 0 only if every client got back exactly what it sent.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

BUILDDIR=${BUILDDIR:-_build}
NAME=${LSOCK_DEMO_NAME:-lsock-demo}
PYTHON=/usr/bin/python3   # Debian's, which has PyGObject (python3-gi)

if [ -t 1 ]; then
  say () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  say () { printf '\n== %s\n' "$*"; }
fi
die () { echo "demo.sh: $*" >&2; exit 1; }

# --- 1. dependencies -----------------------------------------------------------

say "Dependencies"
if [ -x build-aux/deps.sh ]; then
  build-aux/deps.sh || die "installing the dependencies failed"
else
  packages=(meson ninja-build pkg-config gcc libglib2.0-dev gobject-introspection
            libgirepository1.0-dev gir1.2-glib-2.0 valac gjs python3-gi socat gettext)
  missing=()
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed \
      || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q &&
      "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
  echo "all needed packages are installed"
fi

# --- 2. build --------------------------------------------------------------------

say "Building in $BUILDDIR"
if [ ! -f "$BUILDDIR/meson-private/coredata.dat" ]; then
  meson setup "$BUILDDIR" || die "meson setup failed"
fi
meson compile -C "$BUILDDIR" || die "the build failed"
if [ ! -x "$BUILDDIR/tools/lsock" ] || [ ! -x "$BUILDDIR/examples/echo-client" ]; then
  # A build directory configured without the tool or the examples
  meson configure "$BUILDDIR" -Dtools=true -Dexamples=true &&
    meson compile -C "$BUILDDIR" || die "building the tool and the examples failed"
fi

case $BUILDDIR in
  /*) builddir_abs=$BUILDDIR ;;
  *) builddir_abs=$PWD/$BUILDDIR ;;
esac
LSOCK=$BUILDDIR/tools/lsock
# The uninstalled library and its typelib, for Python and GJS
export GI_TYPELIB_PATH=$builddir_abs/lsock-gobject${GI_TYPELIB_PATH:+:$GI_TYPELIB_PATH}
export LD_LIBRARY_PATH=$builddir_abs/lsock-gobject${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# --- 3. the echo service -------------------------------------------------------

# Someone else on the name would answer our clients instead
echo "checking that nobody listens on “$NAME” yet (a connection attempt that should fail)"
if timeout 5 "$LSOCK" connect "$NAME" </dev/null >/dev/null 2>&1 || [ $? -eq 124 ]; then
  die "something already listens on “$NAME”; stop it, or choose another name with LSOCK_DEMO_NAME=…"
fi

say "Starting the echo service: $LSOCK listen --echo --verbose $NAME"
service_log=$(mktemp "${TMPDIR:-/tmp}/lsock-demo.XXXXXX")
"$LSOCK" listen --echo --verbose "$NAME" 2>"$service_log" &
service_pid=$!

# The service's log lines not shown yet, prefixed "service: "
service_shown=0
show_service_log ()
{
  local n
  n=$(wc -l <"$service_log")
  if [ "$n" -gt "$service_shown" ]; then
    head -n "$n" "$service_log" | tail -n "+$(( service_shown + 1 ))" | sed -e 's/^/service: /'
    service_shown=$n
  fi
}
# Wait (at most 2 s) until the service has logged something new and then
# nothing more for 0.1 s: what it says about a client comes just after the
# client is done
settle_service_log ()
{
  local before last=-1 size
  before=$(wc -l <"$service_log")
  for _ in $(seq 20); do
    size=$(wc -c <"$service_log")
    if [ "$size" -eq "$last" ] && [ "$(wc -l <"$service_log")" -gt "$before" ]; then
      break
    fi
    last=$size
    sleep 0.1
  done
}

stop_service ()
{
  if [ -n "${service_pid-}" ] && kill -0 "$service_pid" 2>/dev/null; then
    kill -TERM "$service_pid" 2>/dev/null
    wait "$service_pid" 2>/dev/null
  fi
  rm -f "$service_log"
}
trap stop_service EXIT

# Ready once a connection succeeds: `lsock connect` with no input half-closes
# at once and exits 0 when the service has closed its end. The service
# prints its first line once it listens (or has failed).
say "Readiness probe: \`$LSOCK connect $NAME\`, sending nothing, until the service answers"
ready=false
for _ in $(seq 100); do
  if ! kill -0 "$service_pid" 2>/dev/null; then
    cat "$service_log" >&2
    die "the echo service exited early"
  fi
  if [ -s "$service_log" ] &&
     timeout 5 "$LSOCK" connect "$NAME" </dev/null >/dev/null 2>&1 &&
     kill -0 "$service_pid" 2>/dev/null; then
    ready=true
    break
  fi
  sleep 0.1
done
$ready || { cat "$service_log" >&2; die "the echo service did not answer on “$NAME”"; }
settle_service_log
show_service_log
echo "probe: the service answers (its connection 1 was this probe, not a client)"

# --- 4. the clients -------------------------------------------------------------

# Clients are numbered as the service counts connections: the probe was 1.
# Each client's output is prefixed with its label, then come the service's
# lines about it.
failed=()
client_number=1
run_client ()
{
  local label rc
  client_number=$(( client_number + 1 ))
  label="client $client_number ($1)"
  shift
  say "$label: $*"
  "$@" 2>&1 | sed -e "s/^/$label: /"
  rc=${PIPESTATUS[0]}
  settle_service_log
  show_service_log
  if [ "$rc" -eq 0 ]; then
    echo "$label: -> OK"
  else
    echo "$label: -> FAILED (exit status $rc)"
    failed+=("$label")
  fi
}

run_client C "$BUILDDIR/examples/echo-client" "$NAME"
run_client Python "$PYTHON" examples/echo-client.py "$NAME"
run_client GJS gjs -m examples/echo-client.js "$NAME"
if [ -x "$BUILDDIR/examples/echo-client-vala" ]; then
  run_client Vala "$BUILDDIR/examples/echo-client-vala" "$NAME"
fi

# --- 5. stop ---------------------------------------------------------------------

say "Stopping the echo service (SIGTERM)"
kill -TERM "$service_pid" 2>/dev/null
wait "$service_pid"
service_status=$?
show_service_log
echo "the service exited with status $service_status"
[ "$service_status" -eq 0 ] || failed+=("echo service")

echo
if [ "${#failed[@]}" -eq 0 ]; then
  echo "demo.sh: every client got its data back unchanged"
  exit 0
fi
echo "demo.sh: failed: ${failed[*]}" >&2
exit 1
