"""Names the generated code imports. Everything here ends in `__` so it can
never collide with an ST identifier (IEC forbids double underscores)."""
from __future__ import annotations

import math as _math
import os as _os
import struct as _struct

from .stdlib.blocks import CLASSES as _STD_FB
from .types import ELEMENTARY as T__  # noqa: F401 - used by generated code
from .types import StringType as StringType__  # noqa: F401 - used by generated code
from .values import (IndexOutOfBounds, PlcFault, WatchdogExpired, convert, idiv, imod, st_delete,
                     st_find, st_insert, st_left, st_mid, st_replace, st_right)

_F32 = _struct.Struct("<f")
pack__ = _F32.pack
unpack__ = _F32.unpack

try:  # the C helper, ~5x faster than struct; absent if no compiler at install
    if _os.environ.get("GRIDPLC_NO_F32_EXT"):
        raise ImportError("disabled by GRIDPLC_NO_F32_EXT")
    from ._f32 import f32 as f32__
    HAVE_F32_EXT = True
except ImportError:
    HAVE_F32_EXT = False

    def f32__(x):
        return unpack__(pack__(x))[0]
idiv__ = idiv
imod__ = imod
convert__ = convert
left__ = st_left
right__ = st_right
mid__ = st_mid
insert__ = st_insert
delete__ = st_delete
replace__ = st_replace
find__ = st_find
PlcFault__ = PlcFault

TON__ = _STD_FB["TON"]
TOF__ = _STD_FB["TOF"]
TP__ = _STD_FB["TP"]
R_TRIG__ = _STD_FB["R_TRIG"]
F_TRIG__ = _STD_FB["F_TRIG"]
SR__ = _STD_FB["SR"]
RS__ = _STD_FB["RS"]
CTU__ = _STD_FB["CTU"]
CTD__ = _STD_FB["CTD"]
CTUD__ = _STD_FB["CTUD"]

_NAN = float("nan")
_INF = float("inf")


class Context:
    """The scan's latched time, read by timers, and the quality of inputs.
    Set by the engine only (and by ADVANCE in a test).

    io: (id(holder), key) -> (quality, source timestamp ns or None), where
    holder and key are what runtime.tags.resolve gives for the variable's tag
    (object and attribute name; flat list and 0-based index for an array
    element). No entry: good, no timestamp."""
    __slots__ = ("now_ms", "now_ns", "io")

    def __init__(self):
        self.now_ms = 0
        self.now_ns = 0
        self.io = {}


IO_GOOD__ = (0, None)
id__ = id


def io_age__(ctx, holder, key):
    """IO_AGE: TIME (ms) from the source timestamp to the latched scan time;
    a timestamp after the latch (a driver stamping between latch and scan)
    counts as age 0."""
    ts = ctx.io.get((id(holder), key), IO_GOOD__)[1]
    if ts is None or ts >= ctx.now_ns:
        return 0
    return (ctx.now_ns - ts) // 1_000_000


class AssertionFailed(Exception):
    """An ASSERT_* in a test failed. site indexes CompiledProgram.asserts."""

    def __init__(self, site: int, message: str, values: tuple):
        super().__init__(message)
        self.site = site
        self.message = message
        self.values = values


def assert_failed__(site, message, *values):
    raise AssertionFailed(site, message, values)


def advance__(ctx, ns):
    """ADVANCE / ADVANCE_SCANS: the test's virtual clock moves at once."""
    if ns < 0:
        raise PlcFault(f"ADVANCE by a negative time ({ns} ns)")
    ctx.now_ns += ns
    ctx.now_ms = ctx.now_ns // 1_000_000


def sqrt__(x):
    return _math.sqrt(x) if x >= 0 else _NAN


def ln__(x):
    return _math.log(x) if x > 0 else (-_INF if x == 0 else _NAN)


def log__(x):
    return _math.log10(x) if x > 0 else (-_INF if x == 0 else _NAN)


def exp__(x):
    try:
        return _math.exp(x)
    except OverflowError:
        return _INF


def asin__(x):
    return _math.asin(x) if -1.0 <= x <= 1.0 else _NAN


def acos__(x):
    return _math.acos(x) if -1.0 <= x <= 1.0 else _NAN


sin__ = _math.sin
cos__ = _math.cos
tan__ = _math.tan
atan__ = _math.atan


def expt__(a, b):
    try:
        r = float(a) ** b
    except ZeroDivisionError:
        return _INF
    except OverflowError:
        return _INF
    return r if not isinstance(r, complex) else _NAN


def trunc__(x):
    return _math.trunc(x)


def rol__(x, n, bits):
    n %= bits
    mask = (1 << bits) - 1
    x &= mask
    return ((x << n) | (x >> (bits - n))) & mask


def ror__(x, n, bits):
    n %= bits
    mask = (1 << bits) - 1
    x &= mask
    return ((x >> n) | (x << (bits - n))) & mask


def setbit__(x, n, v):
    return (x | (1 << n)) if v else (x & ~(1 << n))


def copy_structs__(dst, src):
    for d, s in zip(dst, src):
        d.copy__(s)


def copy_deep__(dst, src):
    """Arrays of arrays (and deeper): copy element by element, in place."""
    for i, s in enumerate(src):
        d = dst[i]
        if type(d) is list:
            copy_deep__(d, s)
        elif hasattr(d, "copy__"):
            d.copy__(s)
        else:
            dst[i] = s


def ref_error__(what):
    raise PlcFault(what)


def trunc_div__(a, b):
    """TIME / number: truncates toward zero like integer division."""
    if isinstance(b, float) or isinstance(a, float):
        return _math.trunc(a / b)
    return idiv(a, b)


def struct_init__(obj, values):
    for k, v in values.items():
        setattr(obj, k, v)
    return obj
