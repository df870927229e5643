"""`*_TO_*` conversions among elementary types, and the implicit-conversion
rules (only widening is implicit). Expected values follow IEC 61131-3 and
CODESYS: REAL->integer rounds to nearest with ties to even, TRUNC truncates,
narrowing integer conversions keep the low bits (two's complement)."""
from __future__ import annotations

import struct

import pytest

from tests.stutil import error_codes, run


def f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def prog(decls: str, body: str) -> str:
    return f"PROGRAM P\nVAR\n{decls}\nEND_VAR\n{body}\nEND_PROGRAM\n"


def conv(decls: str, body: str) -> dict:
    return run(prog(decls, body))


# ---------------------------------------------------------------- REAL -> integer

@pytest.mark.parametrize("v,expected", [
    (2.5, 2), (3.5, 4), (-2.5, -2), (-3.5, -4), (0.5, 0), (1.5, 2), (-0.5, 0),
    (2.4, 2), (2.6, 3), (-2.6, -3), (0.0, 0), (100.49, 100), (32767.0, 32767),
])
def test_real_to_int_rounds_half_to_even(v, expected):
    r = conv(f"x : REAL := {v!r}; y : INT;", "y := REAL_TO_INT(x);")
    assert r["P.y"] == expected


@pytest.mark.parametrize("v,expected", [(2.5, 2), (3.5, 4), (-2.5, -2), (1e9 + 0.5, 1000000000), (-7.5, -8)])
def test_lreal_to_dint_rounds_half_to_even(v, expected):
    r = conv(f"x : LREAL := {v!r}; y : DINT;", "y := LREAL_TO_DINT(x);")
    assert r["P.y"] == expected


def test_real_to_other_int_types():
    r = conv("x : REAL := 2.5; a : SINT; b : DINT; c : LINT; d : UINT; e : USINT; f : UDINT; g : ULINT;",
             "a := REAL_TO_SINT(x); b := REAL_TO_DINT(x + 1.0); c := REAL_TO_LINT(x * 3.0); "
             "d := REAL_TO_UINT(x); e := REAL_TO_USINT(x + 2.0); f := REAL_TO_UDINT(0.5); g := REAL_TO_ULINT(1.5);")
    assert (r["P.a"], r["P.b"], r["P.c"], r["P.d"], r["P.e"], r["P.f"], r["P.g"]) == (2, 4, 8, 2, 4, 0, 2)


@pytest.mark.parametrize("v,expected", [(2.7, 2), (-2.7, -2), (2.5, 2), (-2.5, -2), (0.99, 0), (-0.99, 0)])
def test_trunc_toward_zero(v, expected):
    r = conv(f"x : REAL := {v!r}; y : DINT; z : INT;", "y := TRUNC(x); z := DINT_TO_INT(TRUNC(x));")
    assert r["P.y"] == expected and r["P.z"] == expected


# ---------------------------------------------------------------- integer narrowing / widening

@pytest.mark.parametrize("fn,arg,typ,expected", [
    ("INT_TO_SINT", "200", "SINT", -56),
    ("INT_TO_SINT", "-129", "SINT", 127),
    ("DINT_TO_INT", "70000", "INT", 4464),
    ("DINT_TO_INT", "-70000", "INT", -4464),
    ("INT_TO_USINT", "-1", "USINT", 255),
    ("INT_TO_USINT", "300", "USINT", 44),
    ("DINT_TO_UINT", "-1", "UINT", 65535),
    ("UINT_TO_INT", "65535", "INT", -1),
    ("UINT_TO_INT", "32768", "INT", -32768),
    ("INT_TO_UINT", "-2", "UINT", 65534),
    ("UDINT_TO_DINT", "4294967295", "DINT", -1),
    ("LINT_TO_DINT", "4294967301", "DINT", 5),
    ("ULINT_TO_LINT", "18446744073709551615", "LINT", -1),
    ("LINT_TO_ULINT", "-1", "ULINT", 18446744073709551615),
    ("DINT_TO_SINT", "-200", "SINT", 56),
    ("USINT_TO_SINT", "255", "SINT", -1),
    ("WORD_TO_INT", "16#FFFF", "INT", -1),
    ("INT_TO_WORD", "-1", "WORD", 0xFFFF),
    ("DWORD_TO_WORD", "16#12345678", "WORD", 0x5678),
    ("WORD_TO_BYTE", "16#1234", "BYTE", 0x34),
    ("BYTE_TO_SINT", "16#80", "SINT", -128),
    ("DINT_TO_DWORD", "-1", "DWORD", 0xFFFFFFFF),
    ("DINT_TO_LINT", "-5", "LINT", -5),
    ("SINT_TO_INT", "-5", "INT", -5),
    ("UINT_TO_DINT", "65535", "DINT", 65535),
    ("BYTE_TO_WORD", "16#FF", "WORD", 255),
])
def test_integer_conversions(fn, arg, typ, expected):
    src_t = fn.split("_TO_")[0]
    r = conv(f"x : {src_t} := {arg}; y : {typ};", f"y := {fn}(x);")
    assert r["P.y"] == expected


def test_narrowing_of_expression_result():
    r = conv("a : DINT := 40000; b : DINT := 30000; y : INT;", "y := DINT_TO_INT(a + b);")
    assert r["P.y"] == 70000 - 65536


# ---------------------------------------------------------------- BOOL

def test_bool_to_int_and_back():
    r = conv("t : BOOL := TRUE; f : BOOL; a : INT; b : INT; c : BOOL; d : BOOL; e : BOOL; w : WORD; r1 : REAL;",
             "a := BOOL_TO_INT(t); b := BOOL_TO_INT(f); c := INT_TO_BOOL(5); d := INT_TO_BOOL(0); "
             "e := INT_TO_BOOL(-1); w := BOOL_TO_WORD(t); r1 := BOOL_TO_REAL(t);")
    assert r["P.a"] == 1 and r["P.b"] == 0
    assert r["P.c"] is True and r["P.d"] is False and r["P.e"] is True
    assert r["P.w"] == 1 and r["P.r1"] == 1.0


def test_real_to_bool():
    r = conv("a : BOOL; b : BOOL;", "a := REAL_TO_BOOL(0.0); b := REAL_TO_BOOL(0.25);")
    assert r["P.a"] is False and r["P.b"] is True


# ---------------------------------------------------------------- TIME

def test_time_conversions():
    r = conv("t : TIME := T#1m2s500ms; a : DINT; b : TIME; c : REAL; d : TIME; e : LREAL; f : UDINT; g : TIME;",
             "a := TIME_TO_DINT(t); b := DINT_TO_TIME(2500); c := TIME_TO_REAL(T#1.5s); "
             "d := REAL_TO_TIME(250.0); e := TIME_TO_LREAL(t); f := TIME_TO_UDINT(T#1h); g := DINT_TO_TIME(-20);")
    assert r["P.a"] == 62_500          # milliseconds (CODESYS)
    assert r["P.b"] == 2500
    assert r["P.c"] == 1500.0
    assert r["P.d"] == 250
    assert r["P.e"] == 62_500.0
    assert r["P.f"] == 3_600_000
    assert r["P.g"] == -20


def test_real_to_time_rounds():
    r = conv("a : TIME; b : TIME;", "a := REAL_TO_TIME(2.5); b := REAL_TO_TIME(3.5);")
    assert r["P.a"] == 2 and r["P.b"] == 4


def test_time_to_int_wraps():
    r = conv("a : INT;", "a := TIME_TO_INT(T#40s);")
    assert r["P.a"] == 40000 - 65536


# ---------------------------------------------------------------- STRING

@pytest.mark.parametrize("fn,arg,expected", [
    ("INT_TO_STRING", "-42", "-42"),
    ("INT_TO_STRING", "0", "0"),
    ("DINT_TO_STRING", "123456", "123456"),
    ("UINT_TO_STRING", "65535", "65535"),
    ("BOOL_TO_STRING", "TRUE", "TRUE"),
    ("BOOL_TO_STRING", "FALSE", "FALSE"),
])
def test_to_string(fn, arg, expected):
    t = fn.split("_TO_")[0]
    r = conv(f"x : {t} := {arg}; s : STRING;", f"s := {fn}(x);")
    assert r["P.s"] == expected


@pytest.mark.parametrize("v,expected", [("1.5", "1.5"), ("-2.25", "-2.25"),
                                        ("0.1", "0.1"), ("3.65", "3.65")])
def test_real_to_string(v, expected):
    # CODESYS prints a REAL with the shortest digits that read back as the same binary32
    r = conv(f"x : REAL := {v}; s : STRING;", "s := REAL_TO_STRING(x);")
    assert r["P.s"] == expected


def test_lreal_to_string():
    r = conv("x : LREAL := 0.1; s : STRING;", "s := LREAL_TO_STRING(x);")
    assert r["P.s"] == "0.1"


@pytest.mark.parametrize("text,expected", [("123", 123), ("-45", -45), ("0", 0), ("  7", 7)])
def test_string_to_int(text, expected):
    r = conv(f"s : STRING := '{text}'; y : INT;", "y := STRING_TO_INT(s);")
    assert r["P.y"] == expected


def test_string_to_real_and_dint():
    r = conv("a : REAL; b : DINT; c : LREAL;",
             "a := STRING_TO_REAL('2.5'); b := STRING_TO_DINT('-70000'); c := STRING_TO_LREAL('1.5E3');")
    assert r["P.a"] == 2.5 and r["P.b"] == -70000 and r["P.c"] == 1500.0


def test_time_to_string():
    r = conv("s : STRING;", "s := TIME_TO_STRING(T#1m2s);")
    assert r["P.s"] == "T#1m2s"


# ---------------------------------------------------------------- REAL <-> LREAL / int -> REAL

def test_lreal_to_real_rounding():
    r = conv("a : REAL; b : REAL; c : REAL; x : LREAL := 0.1; y : LREAL := 16777217.0; z : LREAL := 1.0E-50;",
             "a := LREAL_TO_REAL(x); b := LREAL_TO_REAL(y); c := LREAL_TO_REAL(z);")
    assert r["P.a"] == 0.10000000149011612
    assert r["P.b"] == 16777216.0
    assert r["P.c"] == 0.0


def test_lreal_to_real_ties_to_even():
    # 16777219 lies halfway between the binary32 neighbours 16777218 and 16777220
    r = conv("a : REAL; b : REAL; x : LREAL := 16777219.0; y : LREAL := 16777221.0;",
             "a := LREAL_TO_REAL(x); b := LREAL_TO_REAL(y);")
    assert r["P.a"] == 16777220.0 and r["P.b"] == 16777220.0


def test_int_to_real_conversions():
    r = conv("d : DINT := 16777217; a : REAL; b : LREAL; i : INT := -3; c : REAL; u : UDINT := 4294967295; e : REAL;",
             "a := DINT_TO_REAL(d); b := DINT_TO_LREAL(d); c := INT_TO_REAL(i); e := UDINT_TO_REAL(u);")
    assert r["P.a"] == 16777216.0 and r["P.b"] == 16777217.0 and r["P.c"] == -3.0
    assert r["P.e"] == 4294967296.0


def test_real_to_lreal_exact():
    r = conv("x : REAL := 0.1; y : LREAL;", "y := REAL_TO_LREAL(x);")
    assert r["P.y"] == f32(0.1)


# ---------------------------------------------------------------- TO_xxx (overloaded)

def test_to_style_conversions():
    r = conv("x : REAL := 2.5; i : INT := 200; a : INT; b : SINT; c : REAL; d : DINT; s : STRING; t : TIME; "
             "e : LREAL; g : BOOL;",
             "a := TO_INT(x); b := TO_SINT(i); c := TO_REAL(i); d := TO_DINT(T#2s); s := TO_STRING(i); "
             "t := TO_TIME(DINT#1500); e := TO_LREAL(x); g := TO_BOOL(i);")
    assert r["P.a"] == 2 and r["P.b"] == -56 and r["P.c"] == 200.0 and r["P.d"] == 2000
    assert r["P.s"] == "200" and r["P.t"] == 1500 and r["P.e"] == 2.5 and r["P.g"] is True


def test_to_int_rounds_half_to_even():
    r = conv("a : INT; b : INT; c : INT;", "a := TO_INT(REAL#3.5); b := TO_INT(REAL#-2.5); c := TO_INT(LREAL#4.5);")
    assert (r["P.a"], r["P.b"], r["P.c"]) == (4, -2, 4)


def test_conversion_case_insensitive():
    r = conv("x : REAL := 3.5; a : INT;", "a := real_to_int(x);")
    assert r["P.a"] == 4


# ---------------------------------------------------------------- implicit conversions

@pytest.mark.parametrize("decls,stmt", [
    ("r : REAL; i : INT;", "i := r;"),
    ("i : INT; s : SINT;", "s := i;"),
    ("d : DINT; i : INT;", "i := d;"),
    ("l : LREAL; r : REAL;", "r := l;"),
    ("d : DINT; r : REAL;", "r := d;"),
    ("u : UINT; i : INT;", "i := u;"),
    ("i : INT; u : UINT;", "u := i;"),
    ("l : LINT; d : DINT;", "d := l;"),
    ("r : LREAL; d : DINT;", "d := r;"),
])
def test_implicit_narrowing_is_error(decls, stmt):
    codes = error_codes(prog(decls, stmt))
    assert "E0021" in codes


@pytest.mark.parametrize("decls,stmt,var,expected", [
    ("d : DINT; i : INT := -300;", "d := i;", "d", -300),
    ("l : LREAL; r : REAL := 1.5;", "l := r;", "l", 1.5),
    ("l : LINT; d : DINT := -70000;", "l := d;", "l", -70000),
    ("r : REAL; i : INT := 12;", "r := i;", "r", 12.0),
    ("l : LREAL; d : DINT := 123456789;", "l := d;", "l", 123456789.0),
    ("i : INT; s : SINT := -5;", "i := s;", "i", -5),
    ("i : INT; u : USINT := 200;", "i := u;", "i", 200),
    ("d : DINT; u : UINT := 65535;", "d := u;", "d", 65535),
    ("w : WORD; b : BYTE := 16#AB;", "w := b;", "w", 0xAB),
    ("t : LTIME; x : TIME := T#2ms;", "t := x;", "t", 2),
])
def test_implicit_widening_compiles(decls, stmt, var, expected):
    src = prog(decls, stmt)
    assert error_codes(src) == []
    assert run(src)[f"P.{var}"] == expected


def test_implicit_narrowing_in_argument_is_error():
    src = """
FUNCTION F : INT
VAR_INPUT a : INT; END_VAR
F := a;
END_FUNCTION
PROGRAM P
VAR d : DINT; x : INT; END_VAR
x := F(d);
END_PROGRAM
"""
    assert "E0021" in error_codes(src)


def test_implicit_widening_in_expression():
    r = conv("i : INT := 30000; d : DINT := 100000; s : DINT; x : LREAL; r1 : REAL := 0.5;",
             "s := i + d; x := r1 + d;")
    assert r["P.s"] == 130000 and r["P.x"] == 100000.5


def test_date_and_time_conversions():
    # DATE and DT in seconds since 1970, TOD in ms since midnight (CODESYS)
    r = conv("d : DATE; t : TOD; u : UDINT; v : UDINT;",
             "d := DT_TO_DATE(DT#2024-02-29-23:59:59); t := DT_TO_TOD(DT#2024-02-29-23:59:59); "
             "u := DATE_TO_UDINT(D#1970-01-02); v := TOD_TO_UDINT(TOD#00:00:01);")
    assert r["P.d"] == 1709164800              # 2024-02-29T00:00:00Z
    assert r["P.t"] == (23 * 3600 + 59 * 60 + 59) * 1000
    assert r["P.u"] == 86400 and r["P.v"] == 1000
