"""Attribute pragmas on declarations, as the runtime reads them.

    {attribute 'log'}                              -> {"log": None}
    {attribute 'opcua' := 'operator'}              -> {"opcua": "operator"}
    {attribute 'alarm' := 'severity=800; message=Cell over-voltage trip'}

CODESYS writes attributes this way; other pragma text is ignored here (the
compiler has its own uses for pragmas)."""
from __future__ import annotations

import re

_ATTR = re.compile(r"^\s*attribute\s+'([^']*)'\s*(?::=\s*'((?:[^']|'')*)')?\s*$", re.IGNORECASE)


def attributes(pragmas) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in pragmas:
        m = _ATTR.match(getattr(p, "text", str(p)))
        if m:
            out[m.group(1).strip().lower()] = None if m.group(2) is None else m.group(2).replace("''", "'")
    return out


def settings(value: str | None) -> dict[str, str]:
    """'severity=800; message=Cell over-voltage trip' -> {'severity': '800', 'message': ...}"""
    out: dict[str, str] = {}
    for part in (value or "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip().lower()] = v.strip()
    return out
