#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The shared library exports exactly the documented API: every exported function appears in
the GIR (which only takes documented, public declarations), and every function in the GIR is
exported.

    check-symbols.py LIBRARY GIR
"""

import subprocess
import sys
import xml.etree.ElementTree as ET

C_NS = "{http://www.gtk.org/introspection/c/1.0}"
GLIB_NS = "{http://www.gtk.org/introspection/glib/1.0}"


def exported(library):
    out = subprocess.run(["nm", "--dynamic", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    names = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    return {name for name in names if name != "CIMGPROXY_1.0"}


def documented(gir):
    names = set()
    for element in ET.parse(gir).iter():
        identifier = element.get(C_NS + "identifier")
        if identifier and element.tag.rpartition("}")[2] in ("function", "method",
                                                             "constructor"):
            names.add(identifier)
        for attribute in ("get-type", "error-domain"):
            value = element.get(GLIB_NS + attribute)
            if value and attribute == "get-type" and value != "intern":
                names.add(value)
    names.add("cimg_proxy_error_quark")
    return names


def main():
    library, gir = sys.argv[1:3]
    exports, docs = exported(library), documented(gir)
    print("1..2")
    status = 0
    for number, (missing, what) in enumerate(
            ((exports - docs, "exported but not documented"),
             (docs - exports, "documented but not exported")), start=1):
        if missing:
            print(f"not ok {number} - {len(missing)} symbols {what}")
            for name in sorted(missing):
                print(f"# {name}")
            status = 1
        else:
            print(f"ok {number} - no symbol {what} ({len(exports)} exports)")
    return status


if __name__ == "__main__":
    sys.exit(main())
