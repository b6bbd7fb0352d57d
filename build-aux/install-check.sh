#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Install lsock-gobject into a temporary prefix and check it as a user would
# see it: the files are there, a C program builds with pkg-config alone, a
# Vala program builds with the VAPI, and Python (PyGObject) and GJS load the
# typelib.
#
# Build directory: ${BUILDDIR:-_build}-install. Set KEEP_PREFIX=1 to keep the
# installed tree for a look afterwards.
set -euo pipefail

cd "$(dirname "$0")/.."
srcdir=$PWD

builddir=${BUILDDIR:-_build}-install
pkg=lsock-gobject-1.0

fail ()
{
  echo "install-check: FAIL: $*" >&2
  exit 1
}
step ()
{
  echo "install-check: $*"
}

prefix=$(mktemp -d "${TMPDIR:-/tmp}/lsock-prefix.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/lsock-install-check.XXXXXX")
cleanup ()
{
  rm -rf "$work"
  if [ "${KEEP_PREFIX:-0}" = 1 ]; then
    echo "install-check: installed tree kept in $prefix"
  else
    rm -rf "$prefix"
  fi
}
trap cleanup EXIT

docs=false
command -v gi-docgen >/dev/null 2>&1 && docs=true
setup_args=(--prefix="$prefix" -Dtools=true -Dtests=false -Dexamples=false
            -Dintrospection=enabled -Dvapi=enabled -Dpython_overrides=enabled
            "-Ddocumentation=$docs")

step "configuring $builddir with prefix $prefix"
if ! { [ -f "$builddir/meson-private/coredata.dat" ] &&
        meson setup --reconfigure "$builddir" "${setup_args[@]}" >"$work/setup.log" 2>&1; }; then
  rm -rf "$builddir"
  meson setup "$builddir" "${setup_args[@]}" >"$work/setup.log" 2>&1 \
    || { cat "$work/setup.log" >&2; fail "meson setup $builddir"; }
fi

step "building and installing"
meson compile -C "$builddir" >"$work/compile.log" 2>&1 \
  || { tail -n 60 "$work/compile.log" >&2; fail "meson compile -C $builddir"; }
meson install -C "$builddir" --no-rebuild --quiet >"$work/install.log" 2>&1 \
  || { cat "$work/install.log" >&2; fail "meson install -C $builddir"; }

# --- installed files ---------------------------------------------------------

pc=$(find "$prefix" -name "$pkg.pc" -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no $pkg.pc under $prefix (looked in lib*/pkgconfig)"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")          # lib/x86_64-linux-gnu or lib
step "libdir is ${libdir#"$prefix"/}"

need ()
{
  [ -e "$prefix/$1" ] || fail "not installed: $1"
}
need "include/$pkg/lsock-gobject/lsock.h"
need "include/$pkg/lsock-gobject/lsock-version.h"
need "include/$pkg/lsock-gobject/lsock-enum-types.h"
need "share/gir-1.0/Lsock-1.0.gir"
need "${libdir#"$prefix"/}/girepository-1.0/Lsock-1.0.typelib"
need "${libdir#"$prefix"/}/lib$pkg.so.0"
need "share/vala/vapi/$pkg.vapi"
need "share/vala/vapi/$pkg.deps"
need "bin/lsock"
need "share/bash-completion/completions/lsock"
if [ "$docs" = true ]; then
  need "share/doc/$pkg/index.html"
fi

overrides=$(find "$prefix" -path '*/gi/overrides/Lsock.py' | head -n 1)
[ -n "$overrides" ] || fail "not installed: the PyGObject overrides (gi/overrides/Lsock.py)"

private=$(find "$prefix/include" -name '*-private.h' -o -name 'config.h')
[ -z "$private" ] || fail "private headers installed: $private"

# Translations: one .mo per language in po/LINGUAS.
linguas=$(sed -e 's/#.*//' po/LINGUAS 2>/dev/null | tr -s ' \t' '\n' | sed '/^$/d' || true)
for lang in $linguas; do
  need "share/locale/$lang/LC_MESSAGES/$pkg.mo"
done
step "installed files present ($(echo "$linguas" | wc -w) translation(s))"

export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GI_TYPELIB_PATH="$libdir/girepository-1.0${GI_TYPELIB_PATH:+:$GI_TYPELIB_PATH}"

# --- the installed tool ------------------------------------------------------

"$prefix/bin/lsock" --help >"$work/lsock-help.txt" 2>&1 \
  || { cat "$work/lsock-help.txt" >&2; fail "bin/lsock --help"; }
step "bin/lsock --help runs"

# --- C, through pkg-config only ----------------------------------------------

pkg-config --exists "$pkg" || fail "pkg-config cannot find $pkg"
# shellcheck disable=SC2046
cc -Wall -Werror -o "$work/install-check" "$srcdir/build-aux/install-check.c" \
    $(pkg-config --cflags --libs "$pkg") \
  || fail "compiling build-aux/install-check.c against the installed headers"
"$work/install-check" || fail "build-aux/install-check.c program"
ldd "$work/install-check" | grep "$libdir/lib$pkg.so.0" >/dev/null \
  || fail "the C program did not load the installed lib$pkg.so.0"
step "C program built with pkg-config $pkg ran"

# --- Vala, through the installed VAPI ----------------------------------------

(cd "$work" && valac --vapidir="$prefix/share/vala/vapi" --pkg "$pkg" \
    -X -w -o install-check-vala "$srcdir/build-aux/install-check.vala") \
  || fail "compiling build-aux/install-check.vala against the installed VAPI"
"$work/install-check-vala" || fail "build-aux/install-check.vala program"
step "Vala program built with --pkg $pkg ran"

# --- Python and GJS, through the installed typelib ---------------------------

/usr/bin/python3 - <<'PY' || fail "Python could not use the installed typelib"
import gi
gi.require_version('Lsock', '1.0')
from gi.repository import Gio, GLib, Lsock
support = Lsock.NameTypeSupport.query()
try:
    name = Lsock.Name.parse('@x')
except GLib.Error as e:
    if support == Lsock.NameTypeSupport.ONLY_PATHS and e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_SUPPORTED):
        print('python: @x not supported here (only paths)')
        raise SystemExit(0)
    raise
assert name.get_kind() == Lsock.NameKind.NAMESPACED, name.get_kind()
print('python: parsed "@x" as %r' % name.to_string())
PY
step "Python loaded Lsock-1.0.typelib"

# The overrides from where they were installed (a temporary prefix is not on
# the Python path: PyGObject finds any gi/overrides directory that is)
PYTHONPATH="${overrides%/gi/overrides/Lsock.py}" LSOCK_OVERRIDES="$overrides" \
/usr/bin/python3 - <<'PY' || fail "Python did not load the installed overrides"
import os
import sys
import gi
gi.require_version('Lsock', '1.0')
from gi.repository import Lsock
loaded = sys.modules['gi.overrides.Lsock'].__file__
assert os.path.samefile(loaded, os.environ['LSOCK_OVERRIDES']), loaded
assert Lsock.Name.parse('/x') == Lsock.Name.parse('/x')
assert len({Lsock.Name.parse('/x'), Lsock.Name.parse('/x')}) == 1
PY
step "Python loaded the overrides from ${overrides#"$prefix"/}"

if command -v gjs >/dev/null 2>&1; then
  gjs -c "
imports.gi.versions.Lsock = '1.0';
const Lsock = imports.gi.Lsock;
if (Lsock.NameTypeSupport.query() !== Lsock.NameTypeSupport.ONLY_PATHS) {
    const name = Lsock.Name.parse('@x');
    if (name.get_kind() !== Lsock.NameKind.NAMESPACED)
        throw new Error('@x is not namespaced');
    print('gjs: parsed \"@x\" as ' + JSON.stringify(name.to_string()));
}
" || fail "GJS could not use the installed typelib"
  step "GJS loaded Lsock-1.0.typelib"
fi

# --- translations reach users ------------------------------------------------

# A failed connect prints the library's message, which the library translates
# through the .mo under its own LOCALEDIR. C.UTF-8 is a real locale to gettext
# (glibc >= 2.35; LANGUAGE is ignored only under plain C/POSIX), so no de_DE
# locale need be generated.
need "share/locale/de/LC_MESSAGES/$pkg.mo"
if LC_ALL=C.UTF-8 LANGUAGE=de "$prefix/bin/lsock" connect "$work/no-such-socket" \
     </dev/null >"$work/lsock-de.txt" 2>&1; then
  fail "bin/lsock connect to a missing socket succeeded"
fi
grep -q 'Dort lauscht niemand' "$work/lsock-de.txt" \
  || { cat "$work/lsock-de.txt" >&2
       fail "no German library message with LC_ALL=C.UTF-8 LANGUAGE=de (is share/locale/de/LC_MESSAGES/$pkg.mo found?)"; }
step "German translation reaches bin/lsock (LANGUAGE=de)"

step "OK"
