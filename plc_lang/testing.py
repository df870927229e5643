"""ST unit tests, as the language sees them: which POUs are tests, their scan
interval, and the functions only tests may call (`gridplc test` runs them;
runtime/sttest.py).

A test is a PROGRAM or FUNCTION_BLOCK named `TEST_...` (any case) or marked
`{attribute 'test'}`. Only tests may call ASSERT_* and ADVANCE*, and only
tests may use other tests, so production code can never move time.
"""
from __future__ import annotations

import re

from .literals import LiteralError, parse_duration_ns

DEFAULT_SCAN_NS = 100_000_000

# name -> (parameter names, how many are required); the last one is the message
TEST_FUNCTIONS: dict[str, tuple[tuple[str, ...], int]] = {
    "ASSERT_TRUE": (("COND", "MSG"), 1),
    "ASSERT_FALSE": (("COND", "MSG"), 1),
    "ASSERT_EQ": (("EXPECTED", "ACTUAL", "MSG"), 2),
    "ASSERT_NEAR": (("EXPECTED", "ACTUAL", "TOLERANCE", "MSG"), 3),
    "ADVANCE": (("T",), 1),
    "ADVANCE_SCANS": (("N",), 1),
}

IO_FUNCTIONS = ("IO_OK", "IO_QUALITY", "IO_AGE")

_ATTR = re.compile(r"^\s*attribute\s+'([^']*)'\s*(?::=\s*'((?:[^']|'')*)')?\s*$", re.IGNORECASE)


def attributes(pragmas) -> dict[str, str | None]:
    """{attribute 'name' := 'value'} pragmas -> {name (lower case): value or None}."""
    out: dict[str, str | None] = {}
    for p in pragmas:
        m = _ATTR.match(p.text)
        if m:
            out[m.group(1).strip().lower()] = None if m.group(2) is None else m.group(2).replace("''", "'")
    return out


def is_test(decl) -> bool:
    """decl: an ast.Pou (None for standard blocks)."""
    if decl is None or decl.kind not in ("PROGRAM", "FUNCTION_BLOCK"):
        return False
    return decl.name.upper().startswith("TEST_") or "test" in attributes(decl.pragmas)


def scan_interval_ns(decl) -> tuple[int, str | None]:
    """The test's `{attribute 'scan' := '100ms'}` in ns, and a problem (or None)."""
    attrs = attributes(decl.pragmas)
    if "scan" not in attrs:
        return DEFAULT_SCAN_NS, None
    text = attrs["scan"] or ""
    if not text.strip():
        return DEFAULT_SCAN_NS, "{attribute 'scan'} needs a duration, e.g. {attribute 'scan' := '100ms'}"
    s = text.strip()
    if "#" in s:
        s = s.split("#", 1)[1]
    try:
        ns = parse_duration_ns(s)
    except LiteralError as e:
        return DEFAULT_SCAN_NS, f"{{attribute 'scan' := '{text}'}}: {e}"
    if ns <= 0:
        return DEFAULT_SCAN_NS, f"{{attribute 'scan' := '{text}'}}: the scan interval must be greater than zero"
    return ns, None
