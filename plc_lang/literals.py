"""Reading literal text (`T#1h2m`, `16#FF`, `'a$Nb'`) into values.

Raise LiteralError with a message an engineer understands; the parser turns
it into an E0003 diagnostic at the literal.
"""
from __future__ import annotations

import datetime as _dt
import re


class LiteralError(ValueError):
    pass


def parse_int(text: str) -> int:
    t = text.replace("_", "")
    if "#" in t:
        base_s, digits = t.split("#", 1)
        base = int(base_s)
        try:
            return int(digits, base)
        except ValueError:
            raise LiteralError(f"'{text}' is not a valid base-{base} number") from None
    return int(t)


def parse_real(text: str) -> float:
    return float(text.replace("_", ""))


_TIME_PART = re.compile(r"([0-9][0-9_]*(?:\.[0-9_]+)?)(d|h|ms|m|s|us|ns)", re.I)
_UNIT_NS = {"d": 86_400_000_000_000, "h": 3_600_000_000_000, "m": 60_000_000_000,
            "s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def parse_duration_ns(body: str) -> int:
    """`1h2m3s4ms` -> nanoseconds. Also used for CLI durations like `100ms`."""
    s = body.replace("_", "")
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s:
        raise LiteralError("empty duration")
    pos = 0
    total = 0
    for m in _TIME_PART.finditer(s):
        if m.start() != pos:
            break
        num, unit = m.group(1), m.group(2).lower()
        if "." in num:
            whole, frac = num.split(".")
            total += int(whole) * _UNIT_NS[unit] + int(frac.ljust(12, "0")[:12]) * _UNIT_NS[unit] // 10**12
        else:
            total += int(num) * _UNIT_NS[unit]
        pos = m.end()
    if pos != len(s):
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", s):
            raise LiteralError(f"duration '{body}' needs a unit (d, h, m, s, ms, us, ns)")
        raise LiteralError(f"'{body}' is not a duration: use units d, h, m, s, ms, us, ns as in T#1h2m3s4ms")
    return sign * total


def parse_time_literal(text: str) -> tuple[int, str]:
    """Returns (value, type): TIME in ms, LTIME in ns."""
    prefix, body = text.split("#", 1)
    ns = parse_duration_ns(body)
    if prefix.upper() in ("LT", "LTIME"):
        return ns, "LTIME"
    if ns % 1_000_000:
        raise LiteralError(f"'{text}' is finer than TIME's millisecond resolution; use LTIME#")
    return ns // 1_000_000, "TIME"


_EPOCH = _dt.date(1970, 1, 1)


def _date_seconds(y: str, mo: str, d: str, text: str) -> int:
    try:
        day = _dt.date(int(y), int(mo), int(d))
    except ValueError:
        raise LiteralError(f"'{text}' is not a calendar date") from None
    return (day - _EPOCH).days * 86400


def _tod_ms(h: str, mi: str, s: str | None, text: str) -> int:
    hh, mm = int(h), int(mi)
    sec = float(s) if s else 0.0
    if not (0 <= hh < 24 and 0 <= mm < 60 and 0 <= sec < 60):
        raise LiteralError(f"'{text}' is not a time of day")
    return (hh * 3600 + mm * 60) * 1000 + round(sec * 1000)


def parse_date_literal(text: str) -> int:
    body = text.split("#", 1)[1]
    y, mo, d = body.split("-")
    return _date_seconds(y, mo, d, text)


def parse_tod_literal(text: str) -> int:
    body = text.split("#", 1)[1]
    parts = body.split(":")
    return _tod_ms(parts[0], parts[1], parts[2] if len(parts) > 2 else None, text)


def parse_dt_literal(text: str) -> int:
    body = text.split("#", 1)[1]
    y, mo, d, rest = body.split("-", 3)
    parts = rest.split(":")
    secs = _date_seconds(y, mo, d, text)
    ms = _tod_ms(parts[0], parts[1], parts[2] if len(parts) > 2 else None, text)
    if ms % 1000:
        raise LiteralError(f"'{text}': DATE_AND_TIME has whole-second resolution")
    return secs + ms // 1000


_ESCAPES = {"$": "$", "'": "'", '"': '"', "L": "\n", "N": "\n", "P": "\f", "R": "\r", "T": "\t"}


def parse_string(text: str, wide: bool) -> str:
    body = text[1:-1]
    if "$" not in body:
        return body
    out = []
    i = 0
    hexlen = 4 if wide else 2
    while i < len(body):
        c = body[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt.upper() in _ESCAPES:
            out.append(_ESCAPES[nxt.upper()])
            i += 2
            continue
        hx = body[i + 1:i + 1 + hexlen]
        if len(hx) == hexlen and all(ch in "0123456789abcdefABCDEF" for ch in hx):
            out.append(chr(int(hx, 16)))
            i += 1 + hexlen
            continue
        raise LiteralError(f"'${nxt}' is not a string escape (use $$, $', $L, $N, $P, $R, $T or ${'h' * hexlen})")
    return "".join(out)
