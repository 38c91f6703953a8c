#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shared library exports exactly the public C API: every dynamic symbol it defines is a
# cimg_proxy_* function, versioned CIMGPROXY_1.0, and nothing of the C++ core leaks out.
set -eu
lib=$1

symbols=$(nm --dynamic --defined-only "$lib" | awk '{ sub(/@.*/, "", $3); print $3 }')
if [ -z "$symbols" ]; then
  echo "not ok 1 - $lib exports nothing"
  exit 1
fi

echo 1..2
stray=$(printf '%s\n' "$symbols" | grep -v -E '^(cimg_proxy_[a-z0-9_]+|CIMGPROXY_1\.0)$' || true)
if [ -n "$stray" ]; then
  echo "not ok 1 - exports outside the public API:"
  printf '%s\n' "$stray" | sed 's/^/# /'
  status=1
else
  echo "ok 1 - $(printf '%s\n' "$symbols" | grep -c '^cimg_proxy_') symbols, all cimg_proxy_*"
fi

unversioned=$(objdump -T "$lib" | awk '/ cimg_proxy_/ && !/CIMGPROXY_1\.0/' || true)
if [ -n "$unversioned" ]; then
  echo "not ok 2 - symbols outside the CIMGPROXY_1.0 version node"
  printf '%s\n' "$unversioned" | sed 's/^/# /'
  status=1
else
  echo "ok 2 - every export carries the CIMGPROXY_1.0 version"
fi
exit ${status:-0}
