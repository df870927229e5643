"""Values between the runtime's Python representation and OPC UA Variants
(server process). The Variant type is always the node's own: asyncua keeps
the old value, silently, when a Float node is written a Double.

Writes are checked strictly, as most PLC servers do: the client sends the
node's DataType (a Double to a Float node is Bad_TypeMismatch); bounds
(subranges, enumerations, EURange, STRING length, whole milliseconds for
TIME) give Bad_OutOfRange.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

from asyncua import ua

from .typemap import UaType

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FLOAT32_MAX = 3.4028234663852886e38


def variant_type(ut: UaType) -> ua.VariantType:
    return getattr(ua.VariantType, ut.variant)


def to_ua(value, ut: UaType):
    """One runtime value as the Python value asyncua encodes for ut.variant."""
    c = ut.codec
    if c == "time_ms":
        return float(value)
    if c == "date_s":
        return datetime.fromtimestamp(value, timezone.utc)
    return value


def variant(value, ut: UaType, vt: ua.VariantType, dims: tuple[int, ...] | None) -> ua.Variant:
    if dims is None:
        return ua.Variant(to_ua(value, ut), vt)
    items = [to_ua(x, ut) for x in value]
    if len(dims) == 1:
        return ua.Variant(items, vt, is_array=True)
    return ua.Variant(items, vt, Dimensions=list(dims), is_array=True)


class WriteRefused(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status            # a ua.StatusCodes attribute name
        self.reason = reason


def from_client(v: ua.Variant, ut: UaType, rng: tuple[float, float] | None):
    """A client's Variant checked against the node: the runtime value, or
    WriteRefused(Bad_TypeMismatch | Bad_OutOfRange)."""
    if v is None or v.VariantType != variant_type(ut) or v.is_array or v.Value is None:
        got = "null" if v is None or v.Value is None else ("an array" if v.is_array else v.VariantType.name)
        raise WriteRefused("BadTypeMismatch", f"the node takes a {ut.variant}, the client sent {got}")
    x = v.Value
    c = ut.codec
    if c == "time_ms":
        if not math.isfinite(x) or x != int(x):
            raise WriteRefused("BadOutOfRange", f"TIME takes whole milliseconds, not {x!r}")
        x = int(x)
    elif c == "date_s":
        if x.tzinfo is None:
            x = x.replace(tzinfo=timezone.utc)
        x = int((x - _EPOCH).total_seconds())
        if x < 0:
            raise WriteRefused("BadOutOfRange", "dates before 1970 do not exist in the PLC")
    elif c == "string":
        if ut.length is not None and len(x) > ut.length:
            raise WriteRefused("BadOutOfRange", f"{len(x)} characters, the variable holds {ut.length}")
    elif c == "enum":
        if x not in dict(ut.enum):
            names = ", ".join(f"{n}={k}" for k, n in ut.enum)
            raise WriteRefused("BadOutOfRange", f"{x} is not a value of the enumeration ({names})")
    elif ut.variant == "Float" and math.isfinite(x) and abs(x) > _FLOAT32_MAX:
        raise WriteRefused("BadOutOfRange", f"{x!r} does not fit a REAL")
    if ut.lo is not None and not ut.lo <= x <= ut.hi:
        raise WriteRefused("BadOutOfRange", f"{x} is outside {ut.lo:g}..{ut.hi:g}")
    if rng is not None and isinstance(x, (int, float)) and not isinstance(x, bool) and not rng[0] <= x <= rng[1]:
        raise WriteRefused("BadOutOfRange", f"{x} is outside the range {rng[0]:g}..{rng[1]:g}")
    return x
