#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the Debian packages from a copy of the tracked sources, checks them with lintian,
# installs them into the system with apt (which must bring skopeo along), uses the installed
# library as other software would (a C program built with pkg-config, Python and GJS
# through the typelib, the cimgproxy command, each on the sample image), then purges them.
# Prints TAP. Needs root.
#
#   build-aux/build-debs.sh [WORKDIR]
set -eu
cd "$(dirname "$0")/.."
top=$PWD
work=${1:-$PWD/_build-debs}
rm -rf "$work"
mkdir -p "$work/src"
git ls-files -z | xargs -0 cp --parents -t "$work/src"

version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" meson.build)
changelog=$(dpkg-parsechangelog -l debian/changelog -S Version)
echo 1..6
if [ "$version" = "$changelog" ]; then
  echo "ok 1 - debian/changelog is at $version, as meson.build"
else
  echo "not ok 1 - debian/changelog says $changelog, meson.build $version"
  exit 1
fi

# Says why a step failed, with the end of its log, and stops.
give_up () {
  echo "not ok $1 - $2"
  tail -n 40 "$3" | sed 's/^/# /'
  exit 1
}

(cd "$work/src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
  give_up 2 "dpkg-buildpackage failed" "$work/build.log"
debs=$(ls "$work"/*.deb)
echo "ok 2 - built $(echo $debs | wc -w) packages: $(cd "$work" && ls *.deb | tr '\n' ' ')"

lintian --fail-on error "$work"/*.changes >"$work/lintian.log" 2>&1 ||
  give_up 3 "lintian errors" "$work/lintian.log"
echo "ok 3 - lintian finds no errors ($(grep -c '^W:' "$work/lintian.log" || true) warnings)"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $debs >"$work/install.log" 2>&1 ||
  give_up 4 "apt-get install failed" "$work/install.log"
echo "ok 4 - installed with apt, skopeo $(skopeo --version | cut -d' ' -f3)"

status=0
image="oci:$top/${BUILDDIR:-_build-tests}/tests/images/multi:latest"
mkdir -p "$work/outside" && cd "$work/outside"
if cc -Wall -Werror -o pull-layers "$top/examples/pull-layers.c" \
     $(pkg-config --cflags --libs cimgproxy-1) &&
   ./pull-layers "$image" >c.log &&
   /usr/bin/python3 "$top/examples/pull-layers.py" "$image" >python.log &&
   gjs -m "$top/examples/pull-layers.js" "$image" >gjs.log &&
   cimgproxy extract "$image" rootfs 2>/dev/null && test -f rootfs/etc/hello.txt; then
  echo "ok 5 - C, Python, GJS and cimgproxy used the installed packages outside the tree"
else
  echo "not ok 5 - the installed packages do not work"
  status=1
fi
cd "$top"

apt-get purge -y -q libcimgproxy-1-0 libcimgproxy-1-dev gir1.2-cimgproxy-1.0 cimgproxy \
  >"$work/purge.log" 2>&1 && ! pkg-config --exists cimgproxy-1 &&
  echo "ok 6 - purged" || { echo "not ok 6 - purge failed"; status=1; }
exit $status
