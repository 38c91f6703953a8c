#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs the Debian packages that building and testing libcimgproxy need, if any is
# missing. Safe to run again; needs root (or sudo) only when something is missing.
set -eu

packages="
  build-essential
  pkg-config
  meson
  ninja-build
  libglib2.0-dev
  libjson-glib-dev
  libcmocka-dev
  gobject-introspection
  libgirepository1.0-dev
  gir1.2-glib-2.0
  gir1.2-json-1.0
  python3
  python3-gi
  python3-pytest
  gjs
  valac
  gi-docgen
  skopeo
  valgrind
  zstd
  libzstd-dev
  libarchive-dev
  bsdutils
  binutils
  debhelper
  lintian
  dpkg-dev
  abigail-tools
  clang-format
  clang
  libclang-rt-14-dev
  tar
  docker-registry
  apache2-utils
  openssl
  gnuplot-nox
"

missing=""
for package in $packages; do
  status=$(dpkg-query -W -f '${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = installed ] || missing="$missing $package"
done

[ -z "$missing" ] && exit 0

echo "Installing:$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing

# docker-registry's package starts a registry of its own on every address where an init
# system lets it; the tests start theirs on 127.0.0.1 and want no other.
case " $missing " in
  *" docker-registry "*)
    if [ -x /etc/init.d/docker-registry ]; then
      $sudo /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
    ;;
esac
