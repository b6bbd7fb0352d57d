# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# Sourced by build-aux/test.sh and .ci/run; not run on its own.
#
# meson_test_counts LOGFILE
#   Reads the summary that `meson test` prints at its end and echoes
#   "PASSED FAILED SKIPPED", with
#     passed  = Ok + Expected Fail
#     failed  = Fail + Unexpected Pass + Timeout
#     skipped = Skipped
#   "No tests defined" / "No suitable tests defined" gives "0 0 0".
#   No summary at all (meson test itself could not run, e.g. the rebuild
#   it starts with failed) gives "0 1 0": one failure, never a silent pass.
meson_test_counts ()
{
  sed -e 's/\x1b\[[0-9;]*[mK]//g' "$1" | awk '
    /^Ok:/              { ok = $2; seen = 1 }
    /^Expected Fail:/   { xfail = $3 }
    /^Fail:/            { fail = $2 }
    /^Unexpected Pass:/ { xpass = $3 }
    /^Skipped:/         { skip = $2 }
    /^Timeout:/         { timeout = $2 }
    /^No (suitable )?tests defined/ { none = 1 }
    END {
      if (seen)      printf "%d %d %d\n", ok + xfail, fail + xpass + timeout, skip
      else if (none) print "0 0 0"
      else           print "0 1 0"
    }'
}
