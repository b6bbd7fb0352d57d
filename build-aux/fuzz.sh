#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   build-aux/fuzz.sh [SECONDS]
#
# Builds the fuzz targets (tests/fuzz) as libFuzzer binaries with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer in $FUZZ_BUILDDIR
# (default _build-fuzz), then fuzzes each for SECONDS (default 60), starting
# from its checked-in corpus. New inputs go to a scratch directory, not the
# checkout; a crash leaves its input in $FUZZ_ARTIFACTS (default
# $FUZZ_BUILDDIR/artifacts) and fails the run. To keep inputs worth
# keeping: fuzz-name-libfuzzer -merge=1 tests/fuzz/corpus/name NEW_DIR
#
# The last line is "N passed, N failed", one per target.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

seconds=${1:-60}
builddir=${FUZZ_BUILDDIR:-_build-fuzz}
artifacts=${FUZZ_ARTIFACTS:-$builddir/artifacts}
targets=(fuzz-name)

die ()
{
  echo "fuzz.sh: $*" >&2
  echo "0 passed, ${#targets[@]} failed"
  exit 1
}

command -v clang >/dev/null 2>&1 || die "clang is not installed (build-aux/deps.sh installs it)"

# shellcheck disable=SC2054 # the commas belong to -Db_sanitize
setup_args=(-Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
            -Dintrospection=disabled -Dvapi=disabled -Ddocumentation=false
            -Dtools=false -Dexamples=false -Dtests=true)
if [ -f "$builddir/meson-private/coredata.dat" ]; then
  meson setup --reconfigure "$builddir" "${setup_args[@]}" >/dev/null \
    || die "meson setup --reconfigure $builddir failed"
else
  CC=clang meson setup "$builddir" "${setup_args[@]}" >/dev/null || die "meson setup failed"
fi
for t in "${targets[@]}"; do
  meson compile -C "$builddir" "$t-libfuzzer" >/dev/null || die "building $t-libfuzzer failed"
done

mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/lsock-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
# (fast unwinding: the slow one runs about 17 times fewer inputs, and the target
# leaks nothing GLib-only that the suppressions would need to match)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$PWD/build-aux/lsan.supp:print_suppressions=0"
export G_SLICE=always-malloc
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/${t#fuzz-}
  mkdir -p "$scratch/$t"
  echo "fuzz.sh: $t for ${seconds}s from $corpus"
  if "$builddir/tests/fuzz/$t-libfuzzer" -max_total_time="$seconds" -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
       "$scratch/$t" "$corpus" 2>"$scratch/$t.log"; then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ *DONE' "$scratch/$t.log"
    echo "fuzz.sh: $t: no failure ($(find "$scratch/$t" -type f | wc -l) new inputs, not kept)"
    passed=$(( passed + 1 ))
  else
    tail -n 60 "$scratch/$t.log" >&2
    echo "fuzz.sh: $t FAILED; its input is in $artifacts" >&2
    failed=$(( failed + 1 ))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
