#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the libFuzzer targets with clang, ASan and UBSan, and runs each for SECONDS (60 by
# default) starting from the seeds in tests/fuzz/corpus. Inputs it finds go to a scratch
# corpus in the build directory; a crash leaves its input there too (crash-*) and fails the
# run. Prints one TAP line per target.
#
#   build-aux/run-fuzzers.sh [SECONDS]
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
builddir=${FUZZ_BUILDDIR:-_build-fuzz}

if [ ! -f "$builddir/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$builddir" -Dfuzzing=true -Dtests=false -Dexamples=false \
    -Dintrospection=disabled -Ddocs=disabled -Db_sanitize=address,undefined -Db_lundef=false \
    >/dev/null
fi
meson compile -C "$builddir" tests/fuzz/fuzz-reply tests/fuzz/fuzz-oci >/dev/null

targets="reply oci"
echo "1..$(echo $targets | wc -w)"
status=0
n=0
for target in $targets; do
  n=$((n + 1))
  corpus="$builddir/corpus-$target"
  mkdir -p "$corpus"
  log="$builddir/fuzz-$target.log"
  if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$builddir/tests/fuzz/fuzz-$target" -max_total_time="$seconds" -timeout=10 \
       -artifact_prefix="$builddir/" "$corpus" "tests/fuzz/corpus/$target" >"$log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1)
    inputs=$(ls "$corpus" | wc -l)
    echo "ok $n - fuzz-$target: ${runs:-done} in ${seconds} s, corpus $inputs inputs"
  else
    echo "not ok $n - fuzz-$target found a crash; see $log and $builddir/crash-*"
    tail -n 30 "$log" | sed 's/^/# /'
    status=1
  fi
done
exit $status
