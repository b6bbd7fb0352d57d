#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds a Windows x64 GLib sysroot for cross-building lsock-gobject, from
# Debian 12's archive only: the mingw-w64 toolchain and Wine are Debian
# packages, zlib is libz-mingw-w64-dev, libffi, pcre2 and GLib come from
# `apt-get source`, and libintl is a stub (build-aux/win32/stub-intl).
# Nothing else is downloaded (meson runs with --wrap-mode=nodownload).
#
#   build-aux/win32/build-sysroot.sh              build if needed, print the dir
#   build-aux/win32/build-sysroot.sh --print-key  only print the cache key
#
# The result lives in $LSOCK_WIN32_CACHE/<key> (default cache directory:
# /var/cache/lsock-gobject) and is reused while the key is unchanged. The key
# hashes the source package versions, the toolchain package versions, meson's
# version and this script with the stub sources, so a Debian update rebuilds
# it by itself. The directory holds:
#   sysroot/                     GLib 2.74 + deps, shared DLLs in sysroot/bin
#   x86_64-w64-mingw32.ini       meson cross file
#   wine.ini                     exe_wrapper layer, for test builds only
#   wine-wrap.sh                 runs a program under Wine with the DLL path
# Those files hold absolute paths: restore a cached copy at the same path.
#
# The last line on stdout is the directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${LSOCK_WIN32_CACHE:-/var/cache/lsock-gobject}
host=x86_64-w64-mingw32
jobs=$(nproc 2>/dev/null || echo 2)

packages=(gcc-mingw-w64-x86-64-win32 binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev
          libz-mingw-w64-dev wine64 wine
          meson ninja-build pkg-config make dpkg-dev python3 zstd)
source_packages=(glib2.0 libffi pcre2)

log () { echo "build-sysroot: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo -E)
else
  SUDO=()
fi
export DEBIAN_FRONTEND=noninteractive

install_packages ()
{
  local missing=() pkg status
  for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    "${SUDO[@]}" apt-get update -q >&2
  fi
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2 \
    || { "${SUDO[@]}" apt-get update -q >&2;
         "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >&2; }
}

# `apt-get source` needs a deb-src entry; a fresh Debian 12 has none. Add one
# for the same archive and keyring as the machine's own entry.
ensure_deb_src ()
{
  if apt-get source --print-uris "${source_packages[@]}" >/dev/null 2>&1; then
    return 0
  fi
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  uri=${uri:-http://deb.debian.org/debian}
  log "adding a deb-src entry for $uri"
  "${SUDO[@]}" tee /etc/apt/sources.list.d/lsock-gobject-deb-src.sources >/dev/null <<SRC
Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  "${SUDO[@]}" apt-get update -q >&2
}

compute_key ()
{
  {
    apt-get source --print-uris "${source_packages[@]}" 2>/dev/null \
      | grep -o "'[^']*\.dsc'" | sed 's|.*/||' | sort
    for pkg in gcc-mingw-w64-x86-64-win32 binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev \
               libz-mingw-w64-dev meson; do
      echo "$pkg $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || apt-cache policy "$pkg" | sed -n 's/ *Candidate: //p')"
    done
    cat "$here/build-sysroot.sh" "$here/stub-intl/libintl.h" "$here/stub-intl/intl.c"
  } | sha256sum | cut -c1-24
}

install_packages
ensure_deb_src
key="win64-$(compute_key)"
if [ "${1:-}" = --print-key ]; then
  echo "$key"
  exit 0
fi

dir="$cache/$key"
if [ -f "$dir/.complete" ]; then
  log "cached sysroot: $dir"
  echo "$dir"
  exit 0
fi

"${SUDO[@]}" mkdir -p "$cache"
[ -w "$cache" ] || "${SUDO[@]}" chown "$(id -u):$(id -g)" "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi

t0=$SECONDS
rm -rf "$dir"
sysroot="$dir/sysroot"
work="$dir/.work"
mkdir -p "$sysroot/bin" "$sysroot/lib" "$sysroot/include" "$work"
trap 'rc=$?; if [ $rc -ne 0 ]; then log "failed; removing $dir"; rm -rf "$dir"; fi' EXIT

# --- the meson cross file, the Wine layer and the Wine wrapper --------------
cat >"$dir/$host.ini" <<INI
[constants]
sysroot = '$sysroot'

[binaries]
c = '$host-gcc'
cpp = '$host-g++'
ar = '$host-ar'
strip = '$host-strip'
windres = '$host-windres'
# meson < 1.3 (Debian 12 has 1.0.1) only reads 'pkgconfig'
pkgconfig = 'pkg-config'

[properties]
pkg_config_libdir = [sysroot + '/lib/pkgconfig', '/usr/$host/lib/pkgconfig']

[built-in options]
c_args = ['-I' + sysroot + '/include']
c_link_args = ['-L' + sysroot + '/lib']

[host_machine]
system = 'windows'
cpu_family = 'x86_64'
cpu = 'x86_64'
endian = 'little'
INI

cat >"$dir/wine-wrap.sh" <<WRAP
#!/bin/sh
# Runs a Windows program under Wine with the sysroot's DLLs on the path.
export WINEPREFIX="\${WINEPREFIX:-\${XDG_CACHE_HOME:-\$HOME/.cache}/lsock-gobject/wine64}"
export WINEDEBUG="\${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="\${WINEDLLOVERRIDES:-mscoree,mshtml=}"
export WINEPATH="$sysroot/bin;/usr/$host/lib\${WINEPATH:+;\$WINEPATH}"
unset DISPLAY
exec wine "\$@"
WRAP
chmod +x "$dir/wine-wrap.sh"

cat >"$dir/wine.ini" <<INI
[binaries]
exe_wrapper = '$dir/wine-wrap.sh'
INI

# --- sources ------------------------------------------------------------------
log "fetching sources: ${source_packages[*]}"
(cd "$work" && apt-get source --download-only "${source_packages[@]}" >"$work/sources.log" 2>&1) \
  || { cat "$work/sources.log" >&2; exit 1; }
for dsc in "$work"/*.dsc; do
  name=$(basename "$dsc" | sed 's/_.*//')
  # (the archive's signature was checked by apt; dpkg-source has no keyring)
  (cd "$work" && dpkg-source -x "$dsc" "src-$name" >/dev/null 2>&1) \
    || { echo "build-sysroot: dpkg-source -x $dsc failed" >&2; exit 1; }
done

export PKG_CONFIG_LIBDIR="$sysroot/lib/pkgconfig:/usr/$host/lib/pkgconfig"

# --- zlib: Debian's package; its DLL goes next to the others ----------------
zdll=$(dpkg -L libz-mingw-w64 libz-mingw-w64-dev 2>/dev/null | grep -i '/zlib1\.dll$' | head -n 1 || true)
[ -n "$zdll" ] && cp "$zdll" "$sysroot/bin/"

# --- libintl stub --------------------------------------------------------------
log "libintl stub"
$host-gcc -O2 -c "$here/stub-intl/intl.c" -o "$work/intl.o"
$host-ar rcs "$sysroot/lib/libintl.a" "$work/intl.o"
cp "$here/stub-intl/libintl.h" "$sysroot/include/"

# Runs "$@" with its output in $work/$1.log, shown (the end) on failure
quietly ()
{
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 || { tail -n 40 "$work/$name.log" >&2; return 1; }
}

# --- libffi --------------------------------------------------------------------
log "libffi"
(cd "$work/src-libffi" \
  && quietly libffi-configure ./configure --host=$host --prefix="$sysroot" --disable-docs \
       --disable-multi-os-directory --enable-shared --disable-static \
  && quietly libffi-make make -j"$jobs" && quietly libffi-install make install)

# --- pcre2, 8-bit only ------------------------------------------------------------
log "pcre2"
(cd "$work/src-pcre2" \
  && quietly pcre2-configure ./configure --host=$host --prefix="$sysroot" --enable-jit \
       --enable-shared --disable-static \
  && quietly pcre2-make make -j"$jobs" && quietly pcre2-install make install)

# --- GLib (configured without the Wine wrapper: see README, Windows) ------------
log "glib"
quietly glib-setup meson setup "$work/build-glib" "$work/src-glib2.0" \
  --cross-file "$dir/$host.ini" \
  --prefix="$sysroot" --libdir=lib --buildtype=debugoptimized \
  -Ddefault_library=shared -Dtests=false -Dinstalled_tests=false -Dman=false \
  -Dgtk_doc=false -Dnls=disabled -Dlibelf=disabled -Dsysprof=disabled \
  --wrap-mode=nodownload
quietly glib-build ninja -C "$work/build-glib" -j"$jobs"
quietly glib-install ninja -C "$work/build-glib" install

rm -rf "$work"
touch "$dir/.complete"
log "built $dir in $((SECONDS - t0)) s"
echo "$dir"
