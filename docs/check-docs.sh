#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every symbol in the GIR is documented (gi-docgen check finds nothing to complain about) and
# says since when it exists.
#
#   check-docs.sh GIR-DIR GIR-FILE
set -eu
echo 1..2

out=$(gi-docgen check --add-include-path="$1" "$2" 2>&1)
if printf '%s\n' "$out" | grep -q -E 'WARNING|ERROR'; then
  echo "not ok 1 - gi-docgen check found undocumented or broken symbols"
  printf '%s\n' "$out" | grep -E 'WARNING|ERROR' | sed 's/^/# /'
  status=1
else
  echo "ok 1 - every symbol of $(basename "$2") is documented"
fi

undated=$(/usr/bin/python3 - "$2" <<'PYTHON'
import sys
import xml.etree.ElementTree as ET

DATED = {"class", "record", "enumeration", "function", "method", "constructor", "property",
         "constant", "signal", "virtual-method"}
for element in ET.parse(sys.argv[1]).iter():
    kind = element.tag.rpartition("}")[2]
    struct_for = element.get("{http://www.gtk.org/introspection/glib/1.0}is-gtype-struct-for")
    if kind in DATED and not struct_for and not element.get("version"):
        print(f"{kind} {element.get('name')}")
PYTHON
)
if [ -n "$undated" ]; then
  echo "not ok 2 - symbols without a Since: line"
  printf '%s\n' "$undated" | sed 's/^/# /'
  status=1
else
  echo "ok 2 - every symbol has a Since: line"
fi
exit ${status:-0}
