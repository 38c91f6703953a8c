#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every C and C++ file is formatted as its .clang-format says: GNU/GLib style for the C
# layers, the core's own style under libcimgproxy/core/.
set -eu
cd "$1"
files=$(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' 2>/dev/null ||
        find . -name '*.[ch]' -o -name '*.[ch]pp')
echo 1..1
if clang-format --dry-run --Werror $files 2>/tmp/cimgproxy-format.$$; then
  echo "ok 1 - $(echo "$files" | wc -w) files formatted"
  rm -f /tmp/cimgproxy-format.$$
else
  echo "not ok 1 - files not formatted; run clang-format -i on them"
  sed 's/^/# /' /tmp/cimgproxy-format.$$ | head -40
  rm -f /tmp/cimgproxy-format.$$
  exit 1
fi
