#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The installed library as an outside program sees it: install the build into a scratch
# DESTDIR, then build a C program and the umbrella header (as C++) with nothing but
# `pkg-config cimgproxy-1` pointed at that tree, run the program, and import the installed
# typelib from Python.
#
#   check-installed.sh BUILDDIR SOURCE-FILE IMAGE-REFERENCE
set -eu
builddir=$1
source=$2
reference=$3

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT INT TERM
echo 1..4

meson install -C "$builddir" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(find "$dest" -name cimgproxy-1.pc)
# The .pc names the real prefix; a copy that names the DESTDIR one stands in for it, so the
# dependencies (GLib) still resolve where they are installed.
mkdir "$dest/pkgconfig"
sed "s|^prefix=|prefix=$dest|" "$pc" > "$dest/pkgconfig/cimgproxy-1.pc"
export PKG_CONFIG_PATH="$dest/pkgconfig"
libdir=$(pkg-config --variable=libdir cimgproxy-1)
flags=$(pkg-config --cflags --libs cimgproxy-1)
echo "ok 1 - installed; pkg-config cimgproxy-1: $flags"

# shellcheck disable=SC2086
cc -Wall -Wextra -Werror -o "$dest/consumer" "$source" $flags
LD_LIBRARY_PATH="$libdir" "$dest/consumer" "$reference" | sed 's/^/# /'
echo "ok 2 - a C program built against the installed tree pulled $reference"

printf '#include <cimgproxy/cimgproxy.h>\nint main () { return CIMG_PROXY_TYPE_CLIENT == 0; }\n' \
  > "$dest/umbrella.cpp"
# shellcheck disable=SC2086
c++ -Wall -Wextra -Werror -o "$dest/umbrella" "$dest/umbrella.cpp" $flags
echo "ok 3 - the umbrella header compiles as C++"

typelibdir=$(find "$dest" -name CImgProxy-1.0.typelib -exec dirname {} \;)
if [ -n "$typelibdir" ]; then
  GI_TYPELIB_PATH="$typelibdir" LD_LIBRARY_PATH="$libdir" /usr/bin/python3 -c '
import gi
gi.require_version("CImgProxy", "1.0")
from gi.repository import CImgProxy
assert CImgProxy.Client.__gtype__.name == "CImgProxyClient"
'
  echo "ok 4 - Python imports CImgProxy from the installed typelib"
else
  echo "ok 4 # SKIP built without introspection"
fi
