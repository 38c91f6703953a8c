#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The quick start's second command, and what CI runs: installs what is missing, then
#
#   1. builds with warnings as errors and runs every test (C, Python, GJS, Vala, examples,
#      installed-library, docs, format and export checks, and the 1000-cycle soak);
#   2. runs the C tests again under valgrind memcheck;
#   3. runs them under ASan+UBSan, and the concurrency tests under TSan;
#   4. runs each libFuzzer target for FUZZ_SECONDS (default 60);
#   5. as root: builds the Debian packages, installs them with apt, uses them from C, Python,
#      GJS and the command outside the tree, and purges them;
#
# and ends with one line "N passed, N failed" counting individual test cases. With
# CIMG_QUICK=1, steps 3 to 5 are skipped (CI never does).
set -eu
cd "$(dirname "$0")/.."

build-aux/install-deps.sh

builddir=${BUILDDIR:-_build-tests}
if [ -f "$builddir/build.ninja" ]; then
  meson setup --reconfigure "$builddir" -Dwerror=true >/dev/null
else
  meson setup "$builddir" -Dwerror=true >/dev/null
fi
meson compile -C "$builddir"

status=0
logs="$builddir/meson-logs"
rm -f "$logs"/testlog*.json _build-asan/meson-logs/testlog.json \
  _build-tsan/meson-logs/testlog.json _build-fuzz/fuzz.tap _build-debs.tap

meson test -C "$builddir" --print-errorlogs --num-processes 2 || status=1
mv "$logs/testlog.json" "$logs/testlog-plain.json"

meson test -C "$builddir" --setup valgrind --suite memcheck --print-errorlogs || status=1
mv "$logs/testlog-valgrind.json" "$logs/testlog-memcheck.json"

results="$logs/testlog-plain.json $logs/testlog-memcheck.json"
if [ "${CIMG_QUICK:-0}" != 1 ]; then
  build-aux/run-sanitizers.sh || status=1
  mkdir -p _build-fuzz
  build-aux/run-fuzzers.sh "${FUZZ_SECONDS:-60}" | tee _build-fuzz/fuzz.tap || status=1
  results="$results _build-asan/meson-logs/testlog.json _build-tsan/meson-logs/testlog.json \
    _build-fuzz/fuzz.tap"
  if [ "$(id -u)" -eq 0 ]; then
    BUILDDIR=$builddir build-aux/build-debs.sh "$PWD/_build-debs" | tee _build-debs.tap ||
      status=1
    results="$results _build-debs.tap"
  else
    echo "Not root: the Debian package check (build-aux/build-debs.sh) needs to install packages"
  fi
fi

# shellcheck disable=SC2086
/usr/bin/python3 build-aux/count-tests.py $results || status=1
exit $status
