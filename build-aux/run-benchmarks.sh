#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs the benchmarks (bench/run-benchmarks.py) in an optimized build of their own,
# _build-bench: about 2.3 GiB of generated images the first time, then every scenario five
# times. Arguments go to the benchmark, e.g. `--runs 9`. Results land in
# _build-bench/bench/results/ (results.csv, results.md, throughput.svg).
set -eu
cd "$(dirname "$0")/.."

build-aux/install-deps.sh
[ -f _build-bench/build.ninja ] ||
  meson setup _build-bench --buildtype=release -Dintrospection=enabled -Ddocs=disabled
meson compile -C _build-bench
exec meson test -C _build-bench --benchmark --test-args "$*"
