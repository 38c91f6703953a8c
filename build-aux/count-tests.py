#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prints "N passed, N failed" for meson test logs (meson-logs/testlog*.json) and TAP files.

TAP tests count once per test case, so a CMocka program with twenty cases is twenty tests;
other tests count once. A test that crashed or timed out before reporting its cases counts
as one failure; pytest runs count by their summary line. Exits non-zero when anything
failed or nothing ran.
"""

import json
import re
import sys

TAP_RESULT = re.compile(r"^(not ok|ok)\b")
# pytest's closing line, e.g. "===== 9 passed, 1 failed in 0.61s ====="
PYTEST_SUMMARY = re.compile(r"^=+ (.*) in [0-9.]+s\b.*=+$")
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?)")


def count(log_path):
    passed = failed = 0
    with open(log_path, encoding="utf-8") as log:
        for line in log:
            test = json.loads(line)
            ok = test["result"] in ("OK", "EXPECTEDFAIL")
            cases = [TAP_RESULT.match(out).group(1)
                     for out in test.get("stdout", "").splitlines() if TAP_RESULT.match(out)]
            summaries = [PYTEST_SUMMARY.match(out) for out in test.get("stdout", "").splitlines()]
            summaries = [m.group(1) for m in summaries if m]
            if summaries:
                counts = {kind: int(n) for n, kind in PYTEST_COUNT.findall(summaries[-1])}
                passed += counts.get("passed", 0)
                failed += counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
                if not ok and failed == 0:
                    failed += 1
            elif test.get("protocol") == "tap" or cases:
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


TAP_PLAN = re.compile(r"^1\.\.(\d+)")


def count_tap(path):
    """A plain TAP file, such as run-fuzzers.sh prints. Results the plan announced but the
    script never printed (it died on the way) count as failures."""
    passed = failed = 0
    planned = None
    with open(path, encoding="utf-8") as tap:
        for line in tap:
            match = TAP_RESULT.match(line)
            plan = TAP_PLAN.match(line)
            if plan:
                planned = int(plan.group(1))
            elif match:
                if match.group(1) == "ok":
                    passed += 1
                else:
                    failed += 1
    if planned is None or passed + failed < planned:
        failed += max(1, (planned or 0) - passed - failed)
    return passed, failed


def main():
    passed = failed = 0
    for path in sys.argv[1:]:
        try:
            p, f = count_tap(path) if path.endswith(".tap") else count(path)
        except FileNotFoundError:
            print(f"{path}: missing, the run did not finish", file=sys.stderr)
            p, f = 0, 1
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
