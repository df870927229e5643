"""Value semantics shared by the constant folder and generated code.

Integers wrap in two's complement at their width, REAL is binary32 (rounded
on every store), integer division truncates toward zero and MOD takes the
sign of the dividend (DESIGN.md, "Language semantics").
"""
from __future__ import annotations

import math
import struct

from .types import (BoolType, DateType, EnumType, IntType, RealType, StringType, SubrangeType,
                    TimeType, Type)

_F32 = struct.Struct("<f")
_pack = _F32.pack
_unpack = _F32.unpack


def f32(x: float) -> float:
    """Round a Python float (binary64) to the nearest binary32, ties to even."""
    return _unpack(_pack(x))[0]


class PlcFault(Exception):
    """A runtime fault in ST code. `where` is "file:line:col" once mapped."""

    def __init__(self, what: str, where: str | None = None):
        super().__init__(what)
        self.what = what
        self.where = where


class DivisionByZero(PlcFault):
    pass


class IndexOutOfBounds(PlcFault):
    pass


class WatchdogExpired(PlcFault):
    pass


def wrap(value: int, bits: int, signed: bool) -> int:
    mask = (1 << bits) - 1
    value &= mask
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def wrap_for(t: Type, value: int) -> int:
    if isinstance(t, SubrangeType):
        t = t.base
    if isinstance(t, IntType):
        return wrap(value, t.bits, t.signed)
    return value


def idiv(a: int, b: int) -> int:
    """Integer division truncating toward zero; b == 0 raises ZeroDivisionError."""
    q = a // b
    if q < 0 and q * b != a:
        q += 1
    return q


def imod(a: int, b: int) -> int:
    """MOD with the sign of the dividend (C, CODESYS); b == 0 raises."""
    r = a % b
    if r and (a < 0) != (b < 0):
        r -= b
    return r


def round_half_even(x: float) -> int:
    """REAL_TO_INT and friends: round to nearest, ties to even (Python round)."""
    if x != x or x in (math.inf, -math.inf):
        raise PlcFault(f"cannot convert {x} to an integer")
    return round(x)


def fdiv(a: float, b: float) -> float:
    return a / b


# ------------------------------------------------------------------ conversion
def convert(value, src: Type, dst: Type):
    """X_TO_Y for elementary types. Narrowing integers wrap (CODESYS)."""
    if isinstance(src, SubrangeType):
        src = src.base
    if isinstance(dst, SubrangeType):
        dst = dst.base
    if isinstance(src, EnumType):
        src = src.base
    if isinstance(dst, BoolType):
        if isinstance(src, StringType):
            return value.strip().upper() == "TRUE" or value.strip() == "1"
        return value != 0
    if isinstance(dst, IntType):
        if isinstance(src, BoolType):
            v = 1 if value else 0
        elif isinstance(src, RealType):
            v = round_half_even(value)
        elif isinstance(src, TimeType):
            v = value
        elif isinstance(src, StringType):
            v = parse_int_text(value)
        else:
            v = int(value)
        return wrap(v, dst.bits, dst.signed)
    if isinstance(dst, RealType):
        if isinstance(src, StringType):
            try:
                v = float(value.strip())
            except ValueError:
                v = 0.0
        else:
            v = float(value)
        return f32(v) if dst.bits == 32 else v
    if isinstance(dst, TimeType):
        if isinstance(src, TimeType):
            # TIME is ms, LTIME is ns
            return value * src.unit_ns // dst.unit_ns if src.unit_ns >= dst.unit_ns else int(value * src.unit_ns / dst.unit_ns)
        if isinstance(src, RealType):
            return round_half_even(value)
        if isinstance(src, BoolType):
            return 1 if value else 0
        return wrap(int(value), 64, True)
    if isinstance(dst, DateType):
        if isinstance(src, BoolType):
            return 1 if value else 0
        if isinstance(src, RealType):
            return round_half_even(value)
        if isinstance(src, DateType):
            return date_convert(value, src.name, dst.name)
        return int(value)
    if isinstance(dst, StringType):
        s = to_string(value, src)
        return s[:dst.length]
    raise PlcFault(f"no conversion from {src} to {dst}")


def parse_int_text(s: str) -> int:
    t = s.strip().replace("_", "")
    try:
        if "#" in t:
            base, digits = t.split("#", 1)
            return int(digits, int(base))
        return int(t)
    except ValueError:
        return 0


def date_convert(value: int, src: str, dst: str) -> int:
    if src == "DATE_AND_TIME" and dst == "DATE":
        return value - value % 86400
    if src == "DATE_AND_TIME" and dst == "TIME_OF_DAY":
        return (value % 86400) * 1000
    if src == dst:
        return value
    raise PlcFault(f"no conversion from {src} to {dst}")


def to_string(value, t: Type) -> str:
    if isinstance(t, BoolType):
        return "TRUE" if value else "FALSE"
    if isinstance(t, RealType):
        return format_real(value, t.bits)
    if isinstance(t, TimeType):
        return format_time(value, t)
    if isinstance(t, StringType):
        return value
    if isinstance(t, EnumType):
        return t.name_of(value)
    if isinstance(t, DateType):
        return format_date(value, t.name)
    return str(value)


def format_real(x: float, bits: int) -> str:
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "INF" if x > 0 else "-INF"
    if bits == 32:
        s = f"{x:.7g}"
    else:
        s = repr(x)
    if "e" not in s and "." not in s and "inf" not in s:
        s += ".0"
    return s


def format_time(v: int, t: TimeType) -> str:
    ns = v * t.unit_ns
    prefix = "T#" if t.name == "TIME" else "LTIME#"
    if ns == 0:
        return prefix + "0ms"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    parts = []
    for unit, size in (("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000),
                       ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("ns", 1)):
        if ns >= size:
            parts.append(f"{ns // size}{unit}")
            ns %= size
    return prefix + sign + "".join(parts)


def format_date(v: int, kind: str) -> str:
    import datetime as _dt
    if kind == "TIME_OF_DAY":
        h, rem = divmod(v, 3_600_000)
        m, rem = divmod(rem, 60_000)
        s, ms = divmod(rem, 1000)
        return f"TOD#{h:02d}:{m:02d}:{s:02d}" + (f".{ms:03d}" if ms else "")
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=v)
    if kind == "DATE":
        return f"D#{d:%Y-%m-%d}"
    return f"DT#{d:%Y-%m-%d-%H:%M:%S}"


# ------------------------------------------------------------------ strings (1-based like IEC)
def st_left(s: str, n: int) -> str:
    return s[:max(0, n)]


def st_right(s: str, n: int) -> str:
    return s[len(s) - n:] if 0 < n < len(s) else (s if n >= len(s) else "")


def st_mid(s: str, n: int, p: int) -> str:
    if p < 1 or n <= 0:
        return ""
    return s[p - 1:p - 1 + n]


def st_insert(s1: str, s2: str, p: int) -> str:
    p = max(0, min(p, len(s1)))
    return s1[:p] + s2 + s1[p:]


def st_delete(s: str, n: int, p: int) -> str:
    if p < 1 or n <= 0:
        return s
    return s[:p - 1] + s[p - 1 + n:]


def st_replace(s1: str, s2: str, n: int, p: int) -> str:
    if p < 1:
        return s1
    return s1[:p - 1] + s2 + s1[p - 1 + max(0, n):]


def st_find(s1: str, s2: str) -> int:
    if not s2:
        return 0
    return s1.find(s2) + 1
