#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The C test suite under AddressSanitizer with UndefinedBehaviorSanitizer (gcc), and the
# concurrency tests under ThreadSanitizer (clang), each in a build directory of its own.
# Any report fails the test that triggered it. The meson test logs end up in
# _build-asan/meson-logs/testlog.json and _build-tsan/meson-logs/testlog.json.
set -eu
cd "$(dirname "$0")/.."
status=0

setup () {
  dir=$1
  shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dintrospection=disabled -Ddocs=disabled \
    -Dexamples=false "$@" >/dev/null
  meson compile -C "$dir" >/dev/null
}

# LeakSanitizer is part of ASan: a definite leak fails the test as well.
setup _build-asan -Db_sanitize=address,undefined
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C _build-asan --suite memcheck --print-errorlogs || status=1

# TSan needs clang's runtime in executables only, so undefined symbols in the library are
# allowed. GLib's locks are invisible to it; build-aux/tsan.supp says what that costs.
CC=clang CXX=clang++ setup _build-tsan -Db_sanitize=thread -Db_lundef=false
TSAN_OPTIONS="suppressions=$PWD/build-aux/tsan.supp:halt_on_error=1:exitcode=66" \
  meson test -C _build-tsan core client async --print-errorlogs || status=1

exit $status
