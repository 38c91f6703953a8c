#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The library's ABI against the committed baseline (abi/libcimgproxy-1.abi, made by
# build-aux/update-abi-baseline.sh). abidiff flags incompatible changes (removed functions,
# changed types) and plain additions alike: an addition is fine, but belongs in the baseline
# of the same commit.
#
#   check-abi.sh LIBRARY BASELINE PUBLIC-HEADERS GENERATED-HEADERS
set -u
library=$1
baseline=$2
echo 1..1
report=$(abidiff --headers-dir2 "$3" --headers-dir2 "$4" --drop-private-types \
  "$baseline" "$library" 2>&1)
status=$?
# abidiff's status is a bit field: 1 error, 2 usage, 4 ABI change, 8 incompatible change.
if [ "$status" -eq 0 ]; then
  echo "ok 1 - the ABI matches $(basename "$baseline")"
  exit 0
fi
if [ $((status & 8)) -ne 0 ]; then
  echo "not ok 1 - incompatible ABI change against $(basename "$baseline")"
elif [ $((status & 4)) -ne 0 ]; then
  echo "not ok 1 - the ABI grew; run build-aux/update-abi-baseline.sh in this commit"
else
  echo "not ok 1 - abidiff failed (status $status)"
fi
printf '%s\n' "$report" | sed 's/^/# /'
exit 1
