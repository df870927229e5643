"""Property tests: integer arithmetic at every width against a reference
model (two's complement wrap, division truncating toward zero, MOD with the
sign of the dividend), and REAL storage against binary32 rounding.

One program is compiled per type and reused across hypothesis examples:
inputs are set through tags, one scan per example."""
from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stutil import build

TYPES = {  # name: (bits, signed)
    "SINT": (8, True), "INT": (16, True), "DINT": (32, True), "LINT": (64, True),
    "USINT": (8, False), "UINT": (16, False), "UDINT": (32, False), "ULINT": (64, False),
}

SRC = """
PROGRAM P
VAR
  a : {t}; b : {t};
  s : {t}; d : {t}; p : {t}; q : {t}; m : {t};
  n : DINT;
END_VAR
n := n + 1;
s := a + b;
d := a - b;
p := a * b;
IF b <> 0 THEN
  q := a / b;
  m := a MOD b;
END_IF;
END_PROGRAM
"""


# ---------------------------------------------------------------- reference model

def wrap(v: int, bits: int, signed: bool) -> int:
    v &= (1 << bits) - 1
    if signed and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def tmod(a: int, b: int) -> int:
    """Remainder with the sign of the dividend: a = b * tdiv(a, b) + tmod(a, b)."""
    return a - b * tdiv(a, b)


def test_reference_model_itself():
    assert tdiv(-7, 2) == -3 and tdiv(7, -2) == -3 and tdiv(-7, -2) == 3
    assert tmod(-7, 2) == -1 and tmod(7, -2) == 1 and tmod(-7, -2) == -1
    assert wrap(128, 8, True) == -128 and wrap(-1, 8, False) == 255 and wrap(1 << 64, 64, False) == 0


# ---------------------------------------------------------------- engines, one per type

_ENGINES: dict[str, object] = {}


def engine_for(t: str):
    e = _ENGINES.get(t)
    if e is None:
        e = build(SRC.format(t=t))
        _ENGINES[t] = e
    return e


@pytest.fixture(scope="module", autouse=True)
def _close_engines():
    yield
    for e in _ENGINES.values():
        e.close()
    _ENGINES.clear()


def ints(bits: int, signed: bool):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    edges = [lo, hi, 0, 1, lo + 1, hi - 1] + ([-1] if signed else [])
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi),
                     st.integers(-1000, 1000).filter(lambda v: lo <= v <= hi))


def check(t: str, a: int, b: int):
    bits, signed = TYPES[t]
    e = engine_for(t)
    tag = e.tag
    tag("P.a").set(a)
    tag("P.b").set(b)
    tag("P.q").set(0)
    tag("P.m").set(0)
    n0 = tag("P.n").get()
    faults = e.scan(e.base_period_ns * n0)
    assert not faults, faults
    assert tag("P.n").get() == n0 + 1
    got = {k: tag(f"P.{k}").get() for k in ("s", "d", "p", "q", "m")}
    exp = {"s": wrap(a + b, bits, signed), "d": wrap(a - b, bits, signed), "p": wrap(a * b, bits, signed),
           "q": wrap(tdiv(a, b), bits, signed) if b else 0,
           "m": wrap(tmod(a, b), bits, signed) if b else 0}
    assert got == exp, f"{t}: a={a} b={b}"


def _make(t: str):
    bits, signed = TYPES[t]

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(a=ints(bits, signed), b=ints(bits, signed))
    def prop(a, b):
        check(t, a, b)

    prop.__name__ = f"test_int_arith_{t.lower()}"
    return prop


for _t in TYPES:
    globals()[f"test_int_arith_{_t.lower()}"] = _make(_t)
del _t


@pytest.mark.parametrize("t", list(TYPES))
def test_int_arith_edge_cases(t):
    bits, signed = TYPES[t]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    cases = [(hi, 1), (lo, 1), (hi, hi), (lo, lo), (hi, 2), (lo, 2)]
    if signed:
        cases += [(lo, -1), (-7, 2), (7, -2), (-7, -2), (-1, hi)]
    for a, b in cases:
        check(t, a, b)


# ---------------------------------------------------------------- REAL storage

REAL_SRC = """
PROGRAM P
VAR x : LREAL; r : REAL; back : LREAL; END_VAR
r := LREAL_TO_REAL(x);
back := r;
END_PROGRAM
"""

_REAL: list = []


def real_engine():
    if not _REAL:
        _REAL.append(build(REAL_SRC))
    return _REAL[0]


@pytest.fixture(scope="module", autouse=True)
def _close_real():
    yield
    for e in _REAL:
        e.close()
    _REAL.clear()


def f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


F32_MAX = 3.4028234663852886e38


@settings(max_examples=300, deadline=None)
@given(x=st.one_of(st.floats(min_value=-F32_MAX, max_value=F32_MAX, allow_nan=False),
                   st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
                   st.floats(min_value=-1e-30, max_value=1e-30, allow_nan=False)))
def test_real_store_is_binary32(x):
    e = real_engine()
    e.tag("P.x").set(x)
    assert not e.scan(0)
    expected = f32(x)
    got = e.tag("P.r").get()
    back = e.tag("P.back").get()
    assert got == expected or (math.isnan(got) and math.isnan(expected)), x
    assert back == expected


@settings(max_examples=200, deadline=None)
@given(a=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
       b=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_real_sum_rounded_on_store(a, b):
    e = _sum_engine()
    e.tag("P.a").set(f32(a))
    e.tag("P.b").set(f32(b))
    assert not e.scan(0)
    # the sum of two binary32 values, rounded to binary32 when stored
    assert e.tag("P.s").get() == f32(f32(a) + f32(b))


_SUM: list = []


def _sum_engine():
    if not _SUM:
        _SUM.append(build("PROGRAM P\nVAR a : REAL; b : REAL; s : REAL; END_VAR\ns := a + b;\nEND_PROGRAM\n"))
    return _SUM[0]


@pytest.fixture(scope="module", autouse=True)
def _close_sum():
    yield
    for e in _SUM:
        e.close()
    _SUM.clear()


# ---------------------------------------------------------------- conversions

CONV_SRC = """
PROGRAM P
VAR x : REAL; i : DINT; t : DINT; d : LINT; s8 : SINT; u8 : USINT; s16 : INT; u16 : UINT; s32 : DINT; u32 : UDINT; END_VAR
i := REAL_TO_DINT(x);
t := TRUNC(x);
s8 := LINT_TO_SINT(d);
u8 := LINT_TO_USINT(d);
s16 := LINT_TO_INT(d);
u16 := LINT_TO_UINT(d);
s32 := LINT_TO_DINT(d);
u32 := LINT_TO_UDINT(d);
END_PROGRAM
"""

_CONV: list = []


def _conv_engine():
    if not _CONV:
        _CONV.append(build(CONV_SRC))
    return _CONV[0]


@pytest.fixture(scope="module", autouse=True)
def _close_conv():
    yield
    for e in _CONV:
        e.close()
    _CONV.clear()


def _half_even(x: float) -> int:
    fl = math.floor(x)
    diff = x - fl
    if diff > 0.5 or (diff == 0.5 and fl % 2 == 1):
        return fl + 1
    return fl


@settings(max_examples=200, deadline=None)
@given(x=st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
                   st.integers(-20000, 20000).map(lambda n: n + 0.5)),
       d=st.integers(-(1 << 63), (1 << 63) - 1))
def test_conversion_properties(x, d):
    e = _conv_engine()
    x = f32(x)
    e.tag("P.x").set(x)
    e.tag("P.d").set(d)
    assert not e.scan(0)
    assert e.tag("P.i").get() == _half_even(x)
    assert e.tag("P.t").get() == (math.floor(x) if x >= 0 else math.ceil(x))
    for name, bits, signed in (("s8", 8, True), ("u8", 8, False), ("s16", 16, True), ("u16", 16, False),
                               ("s32", 32, True), ("u32", 32, False)):
        assert e.tag(f"P.{name}").get() == wrap(d, bits, signed), name
