#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The quick start's second command, and what CI runs: installs what is missing, builds in a
# directory of its own, runs every test (then the C tests again under valgrind), and ends
# with one line "N passed, N failed" counting individual test cases.
set -eu
cd "$(dirname "$0")/.."

build-aux/install-deps.sh

builddir=${BUILDDIR:-_build-tests}
if [ -f "$builddir/build.ninja" ]; then
  meson setup --reconfigure "$builddir" -Dwerror=true
else
  meson setup "$builddir" -Dwerror=true
fi
meson compile -C "$builddir"

status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 || status=1
cp "$builddir/meson-logs/testlog.json" "$builddir/meson-logs/testlog-plain.json"

meson test -C "$builddir" --setup valgrind --suite memcheck --print-errorlogs || status=1
cp "$builddir/meson-logs/testlog-valgrind.json" "$builddir/meson-logs/testlog-memcheck.json" \
  2>/dev/null || true

/usr/bin/python3 build-aux/count-tests.py "$builddir/meson-logs/testlog-plain.json" \
  "$builddir/meson-logs/testlog-memcheck.json" || status=1
exit $status
