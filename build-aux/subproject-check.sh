#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Checks the release tarball and the use of lsock-gobject as a Meson
# subproject, offline:
#
#   build-aux/subproject-check.sh
#
# 1. dist: `meson dist` in $DIST_BUILDDIR (default _build-dist) makes
#    lsock-gobject-VERSION.tar.xz from the git HEAD, then unpacks it, builds
#    it from scratch and runs its whole test suite (DIST_TESTS=0: only make
#    the tarball). Needs a git checkout with everything committed
#    (ALLOW_DIRTY=1 passes --allow-dirty: a tarball without your changes).
# 2. subproject: a parent project in a temporary directory, with
#    docs/lsock-gobject.wrap as subprojects/lsock-gobject.wrap (source_hash
#    set to the tarball's) and the tarball in subprojects/packagecache/, whose
#    meson.build says only dependency('lsock-gobject-1.0'). It is configured
#    with -Dwerror=true (and --force-fallback-for, so that an installed
#    lsock-gobject cannot stand in for the subproject), built, and its one
#    test (build-aux/subproject-check.c: a round trip through a stream pair)
#    run with `meson test`. Then: no executable of lsock-gobject was defined
#    (tests, the lsock tool, examples), and `meson test --list` shows no test
#    of lsock-gobject.
#
# Each numbered check passes or fails; the last line is "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

DIST_BUILDDIR=${DIST_BUILDDIR:-_build-dist}
passed=0
failed=0
pass () { echo "subproject-check: PASS: $*"; passed=$(( passed + 1 )); }
fail () { echo "subproject-check: FAIL: $*" >&2; failed=$(( failed + 1 )); }
finish ()
{
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
elapsed () { echo "$(( SECONDS - $1 ))s"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/lsock-subproject-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- 1. meson dist ---------------------------------------------------------------

t=$SECONDS
version=$(meson introspect --projectinfo meson.build 2>/dev/null |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])') \
  || { fail "could not read the project version"; finish; }
tarball=$DIST_BUILDDIR/meson-dist/lsock-gobject-$version.tar.xz

dist_args=(--formats xztar)
[ "${DIST_TESTS:-1}" = 0 ] && dist_args+=(--no-tests)
[ "${ALLOW_DIRTY:-0}" = 1 ] && dist_args+=(--allow-dirty)

echo "subproject-check: meson dist ${dist_args[*]} in $DIST_BUILDDIR"
rm -f "$tarball"
if { [ -f "$DIST_BUILDDIR/meson-private/coredata.dat" ] ||
       meson setup "$DIST_BUILDDIR" >"$work/dist-setup.log" 2>&1 ||
       { cat "$work/dist-setup.log" >&2; false; }; } &&
   meson dist -C "$DIST_BUILDDIR" "${dist_args[@]}" </dev/null >"$work/dist.log" 2>&1 &&
   [ -f "$tarball" ]; then
  grep -E '^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):' "$work/dist.log" || true
  if [ "${DIST_TESTS:-1}" = 0 ]; then
    pass "1 dist: $(basename "$tarball") made (not built or tested: DIST_TESTS=0), $(elapsed "$t")"
  else
    pass "1 dist: $(basename "$tarball") builds from scratch and passes its tests, $(elapsed "$t")"
  fi
else
  tail -n 80 "$work/dist.log" >&2
  fail "1 dist: meson dist failed (the end of its output is above), $(elapsed "$t")"
  echo "subproject-check: without a tarball the subproject check cannot run" >&2
  finish
fi

# --- 2. a parent project -------------------------------------------------------------

t=$SECONDS
parent=$work/parent
mkdir -p "$parent/subprojects/packagecache"
cp "$tarball" "$parent/subprojects/packagecache/"
hash=$(sha256sum "$tarball" | cut -d ' ' -f 1)
# The wrap file we ship, with this tarball's hash
sed -e "s/^source_hash = .*/source_hash = $hash/" docs/lsock-gobject.wrap \
  >"$parent/subprojects/lsock-gobject.wrap"
grep -q "^directory = lsock-gobject-$version\$" "$parent/subprojects/lsock-gobject.wrap" \
  || fail "2 wrap: docs/lsock-gobject.wrap does not name directory lsock-gobject-$version"
cp build-aux/subproject-check.c "$parent/main.c"
cat >"$parent/meson.build" <<'EOF'
project('lsock-parent', 'c', version: '1.0', meson_version: '>= 1.0')
lsock_dep = dependency('lsock-gobject-1.0')
exe = executable('lsock-parent', 'main.c', dependencies: lsock_dep)
test('lsock-parent', exe)
EOF

if meson setup "$parent/_build" "$parent" -Dwerror=true \
     --force-fallback-for=lsock-gobject-1.0 >"$work/parent-setup.log" 2>&1; then
  pass "2 parent: configured, dependency('lsock-gobject-1.0') from the wrap file"
else
  cat "$work/parent-setup.log" >&2
  fail "2 parent: meson setup failed"
  finish
fi
grep -E 'lsock-gobject.* (from cache|Unpacking|downloading)' "$work/parent-setup.log" || true
awk '/^lsock-gobject [0-9]/ { p = 1 } p' "$work/parent-setup.log"   # its summary()

if meson compile -C "$parent/_build" >"$work/parent-build.log" 2>&1 &&
   meson test -C "$parent/_build" --print-errorlogs </dev/null >"$work/parent-test.log" 2>&1; then
  grep -E '^ *1/1 ' "$work/parent-test.log" || true
  pass "3 parent: built with -Dwerror=true, its program ran, $(elapsed "$t")"
else
  tail -n 60 "$work/parent-build.log" >&2
  cat "$work/parent-test.log" >&2
  fail "3 parent: build or test failed"
fi

# What the parent got from lsock-gobject: the library, no executables
meson introspect --targets "$parent/_build" >"$work/targets.json" 2>/dev/null
read -r n_targets n_lsock n_exes exes < <(python3 - "$work/targets.json" <<'EOF'
import json, sys
targets = json.load(open(sys.argv[1]))
lsock = [t for t in targets if t.get('subproject') == 'lsock-gobject']
exes = [t['name'] for t in lsock if t['type'] == 'executable']
print(len(targets), len(lsock), len(exes), ','.join(exes) or '-')
EOF
)
echo "subproject-check: the parent has ${n_targets:-?} targets, ${n_lsock:-?} of them lsock-gobject's:" \
     "$(python3 -c 'import json, sys; print(", ".join(sorted(t["name"] for t in json.load(open(sys.argv[1])) if t.get("subproject") == "lsock-gobject")))' "$work/targets.json" 2>/dev/null)"
if [ "${n_lsock:-0}" -gt 0 ] && [ "${n_exes:-1}" -eq 0 ]; then
  pass "4 targets: lsock-gobject built no tests, tool or examples"
else
  fail "4 targets: lsock-gobject's executables in the parent: ${exes:-?}"
fi

tests=$(meson test -C "$parent/_build" --list --no-rebuild 2>/dev/null)
if [ "$tests" = "lsock-parent" ]; then
  pass "5 tests: meson test in the parent runs its own test only"
else
  fail "5 tests: meson test --list in the parent: $(echo "$tests" | tr '\n' ' ')"
fi

finish
