"""Compares a program's output with an .expected file; exit 0 when they match.

Each expected line must equal the output line, except a line written `~ REGEX`, which must
match the whole output line (for values that vary, such as a TTL in milliseconds or a
timestamp). On a mismatch, prints the first differing line of each side.

    python3 compare_output.py EXPECTED ACTUAL
"""

import re
import sys

expected = open(sys.argv[1], encoding="utf-8").read().splitlines()
actual = open(sys.argv[2], encoding="utf-8", errors="replace").read().splitlines()

for i in range(max(len(expected), len(actual))):
    want = expected[i] if i < len(expected) else "<end of output>"
    got = actual[i] if i < len(actual) else "<end of output>"
    if want.startswith("~ ") and i < len(actual):
        ok = re.fullmatch(want[2:], got) is not None
    else:
        ok = want == got
    if not ok:
        print(f"line {i + 1}: expected {want!r}, got {got!r}")
        sys.exit(1)
sys.exit(0)
