"""Engineering values from drivers into a variable's representation.

A driver hands over what the field said (a float from a scaled register, an
int from a CAN signal, a bool); the engine stores what the ST type holds. A
value the type cannot hold is not wrapped or clipped into something
plausible: it is refused, and the input's quality goes BAD.
"""
from __future__ import annotations

import math

from plc_lang.types import (BoolType, EnumType, IntType, RealType, StringType, SubrangeType, TimeType,
                            Type, strip_subrange)
from plc_lang.values import f32

_REAL32_MAX = 3.4028234663852886e38


def field_value(v, t: Type):
    """The value to store, or None when `t` cannot hold `v`."""
    ts = strip_subrange(t)
    if isinstance(ts, BoolType):
        if isinstance(v, (bool, int)) or (isinstance(v, float) and v in (0.0, 1.0)):
            return bool(v)
        return None
    if isinstance(ts, IntType):
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, float):
            if not math.isfinite(v):
                return None
            v = round(v)            # ties to even, like REAL_TO_INT
        if not isinstance(v, int):
            return None
        if not ts.lo <= v <= ts.hi:
            return None
        if isinstance(t, SubrangeType) and not t.lo <= v <= t.hi:
            return None
        return v
    if isinstance(ts, RealType):
        if isinstance(v, (bool, str)) or not isinstance(v, (int, float)):
            return None
        x = float(v)
        if math.isnan(x):
            return None
        if ts.bits == 32:
            if abs(x) > _REAL32_MAX and math.isfinite(x):
                return None
            return f32(x)
        return x
    if isinstance(ts, TimeType):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        return round(v)             # already in the type's unit (ms for TIME)
    if isinstance(ts, EnumType):
        if isinstance(v, int) and not isinstance(v, bool) and v in ts.members.values():
            return v
        if isinstance(v, str) and v.upper() in ts.members:
            return ts.members[v.upper()]
        return None
    if isinstance(ts, StringType):
        return str(v)[:ts.length] if isinstance(v, str) else None
    return None

