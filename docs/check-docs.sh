#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every symbol in the GIR is documented: gi-docgen check must find nothing to complain about.
#
#   check-docs.sh GIR-DIR GIR-FILE
set -eu
out=$(gi-docgen check --add-include-path="$1" "$2" 2>&1)
echo 1..1
if printf '%s\n' "$out" | grep -q -E 'WARNING|ERROR'; then
  echo "not ok 1 - gi-docgen check found undocumented or broken symbols"
  printf '%s\n' "$out" | grep -E 'WARNING|ERROR' | sed 's/^/# /'
  exit 1
fi
echo "ok 1 - every symbol of $(basename "$2") is documented"
