#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Regenerates abi/libcimgproxy-1.abi from a build: run it in the commit that adds API on
# purpose, so that the abi test accepts the addition. Removing or changing API is not
# something a baseline update makes right: API 1 only grows.
#
#   build-aux/update-abi-baseline.sh [BUILDDIR]
set -eu
cd "$(dirname "$0")/.."
builddir=${1:-build}
abidw --headers-dir include/cimgproxy --headers-dir "$builddir/include/cimgproxy" \
  --drop-private-types --no-corpus-path --out-file abi/libcimgproxy-1.abi \
  "$builddir/libcimgproxy/libcimgproxy-1.so.0"
echo "abi/libcimgproxy-1.abi updated from $builddir"
