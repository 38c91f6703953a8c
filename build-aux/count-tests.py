#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prints "N passed, N failed" for one or more meson test logs (meson-logs/testlog*.json).

TAP tests count once per test case, so a CMocka program with twenty cases is twenty tests;
other tests count once. A test that crashed or timed out before reporting its cases counts
as one failure. Exits non-zero when anything failed or nothing ran.
"""

import json
import re
import sys

TAP_RESULT = re.compile(r"^(not ok|ok)\b")


def count(log_path):
    passed = failed = 0
    with open(log_path, encoding="utf-8") as log:
        for line in log:
            test = json.loads(line)
            ok = test["result"] in ("OK", "EXPECTEDFAIL")
            cases = [TAP_RESULT.match(out).group(1)
                     for out in test.get("stdout", "").splitlines() if TAP_RESULT.match(out)]
            if test.get("protocol") == "tap" or cases:
                case_passed = cases.count("ok")
                case_failed = cases.count("not ok")
                # A crash after some cases still fails the test as a whole.
                if not ok and case_failed == 0:
                    case_failed = 1
                passed += case_passed
                failed += case_failed
            elif ok:
                passed += 1
            elif test["result"] != "SKIP":
                failed += 1
    return passed, failed


def main():
    passed = failed = 0
    for path in sys.argv[1:]:
        try:
            p, f = count(path)
        except FileNotFoundError:
            print(f"{path}: missing, the run did not finish", file=sys.stderr)
            p, f = 0, 1
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
