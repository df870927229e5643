"""String functions with IEC 61131-3 1-based positions, STRING(n)
truncation on store, STRING[n] spelling, WSTRING."""
from __future__ import annotations

import pytest

from tests.stutil import error_codes, run


def prog(decls: str, body: str) -> str:
    return f"PROGRAM P\nVAR\n{decls}\nEND_VAR\n{body}\nEND_PROGRAM\n"


def ev(expr: str, typ: str = "STRING", decls: str = "") -> object:
    return run(prog(f"{decls}\ny : {typ};", f"y := {expr};"))["P.y"]


@pytest.mark.parametrize("expr,expected", [
    ("LEN('hello')", 5),
    ("LEN('')", 0),
    ("LEN('a$Nb')", 3),
    ("LEN('it$'s')", 4),
    ("LEN(s)", 6),
])
def test_len(expr, expected):
    assert ev(expr, "INT", "s : STRING := 'abcdef';") == expected


@pytest.mark.parametrize("expr,expected", [
    ("LEFT('hello', 2)", "he"),
    ("LEFT('hello', 0)", ""),
    ("LEFT('hello', 5)", "hello"),
    ("LEFT('hello', 9)", "hello"),
    ("RIGHT('hello', 3)", "llo"),
    ("RIGHT('hello', 0)", ""),
    ("RIGHT('hello', 9)", "hello"),
    ("LEFT(IN := 'abcdef', L := 4)", "abcd"),
    ("RIGHT(IN := 'abcdef', L := 1)", "f"),
])
def test_left_right(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("MID('hello', 2, 2)", "el"),           # MID(IN, L, P): L characters from position P
    ("MID('hello', 3, 1)", "hel"),
    ("MID('hello', 1, 5)", "o"),
    ("MID('hello', 5, 1)", "hello"),
    ("MID('abcdef', 2, 5)", "ef"),          # runs off the end: what is there
    ("MID(IN := 'abcdef', L := 3, P := 2)", "bcd"),
])
def test_mid(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("CONCAT('ab', 'cd')", "abcd"),
    ("CONCAT('', 'x')", "x"),
    ("CONCAT('a', 'b', 'c')", "abc"),
    ("CONCAT('a', 'b', 'c', 'd', 'e')", "abcde"),
    ("CONCAT(IN1 := 'x', IN2 := 'y')", "xy"),
])
def test_concat(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("INSERT('abcd', 'XY', 2)", "abXYcd"),   # after the P-th character
    ("INSERT('abcd', 'XY', 0)", "XYabcd"),
    ("INSERT('abcd', 'XY', 4)", "abcdXY"),
    ("INSERT('abcd', 'XY', 1)", "aXYbcd"),
    ("INSERT(IN1 := 'abc', IN2 := '-', P := 3)", "abc-"),
])
def test_insert(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("DELETE('abcdef', 2, 3)", "abef"),      # DELETE(IN, L, P): L characters from position P
    ("DELETE('abcdef', 1, 1)", "bcdef"),
    ("DELETE('abcdef', 3, 4)", "abc"),
    ("DELETE('abcdef', 0, 2)", "abcdef"),
    ("DELETE(IN := 'abcdef', L := 6, P := 1)", ""),
])
def test_delete(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("REPLACE('abcdef', 'XY', 3, 2)", "aXYef"),   # REPLACE(IN1, IN2, L, P)
    ("REPLACE('abcdef', 'XY', 1, 1)", "XYbcdef"),
    ("REPLACE('abcdef', '', 2, 5)", "abcd"),
    ("REPLACE('abcdef', 'Z', 0, 3)", "abZcdef"),
    ("REPLACE(IN1 := 'abcdef', IN2 := '12345', L := 2, P := 5)", "abcd12345"),
])
def test_replace(expr, expected):
    assert ev(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("FIND('abcabc', 'ca')", 3),
    ("FIND('abcabc', 'abc')", 1),
    ("FIND('abcabc', 'c')", 3),
    ("FIND('abc', 'x')", 0),
    ("FIND('abc', 'abcd')", 0),
    ("FIND(IN1 := 'hello world', IN2 := 'o')", 5),
])
def test_find(expr, expected):
    assert ev(expr, "INT") == expected


def test_functions_on_variables_and_nested():
    r = run(prog("s : STRING := 'battery'; t : STRING; n : INT; p : INT;", """
t := CONCAT(LEFT(s, 3), RIGHT(s, 3));
n := LEN(CONCAT(s, s));
p := FIND(s, MID(s, 2, 3));"""))
    assert r["P.t"] == "batery"
    assert r["P.n"] == 14
    assert r["P.p"] == 3


# ---------------------------------------------------------------- lengths

def test_string_n_truncates_on_store():
    r = run(prog("s : STRING(5); t : STRING(3); u : STRING(5); v : STRING(5);", """
s := 'abcdefgh';
t := CONCAT('xy', 'zw');
u := 'ab';
v := s;
u := CONCAT(u, s);"""))
    assert r["P.s"] == "abcde"
    assert r["P.t"] == "xyz"
    assert r["P.u"] == "ababc"
    assert r["P.v"] == "abcde"


def test_string_n_truncates_when_copied_to_shorter():
    r = run(prog("long : STRING(20) := 'abcdefghij'; short : STRING(4);", "short := long;"))
    assert r["P.short"] == "abcd" and r["P.long"] == "abcdefghij"


def test_default_string_length_is_80():
    r = run(prog("s : STRING; i : INT;", "FOR i := 1 TO 10 DO s := CONCAT(s, '0123456789'); END_FOR;"))
    assert r["P.s"] == "0123456789" * 8


def test_string_square_bracket_length():
    r = run(prog("s : STRING[20]; t : STRING[3];", "s := 'hello world'; t := s;"))
    assert r["P.s"] == "hello world" and r["P.t"] == "hel"


def test_string_in_struct_and_function_input_truncates():
    src = """
TYPE Tag : STRUCT name : STRING(4); END_STRUCT; END_TYPE
FUNCTION Len4 : INT
VAR_INPUT s : STRING(4); END_VAR
Len4 := LEN(s);
END_FUNCTION
PROGRAM P
VAR t : Tag; n : INT; END_VAR
t.name := 'abcdefg';
n := Len4('xyzxyz');
END_PROGRAM
"""
    r = run(src)
    assert r["P.t"] == {"name": "abcd"} and r["P.n"] == 4


def test_string_comparison():
    r = run(prog("s : STRING := 'abc'; a : BOOL; b : BOOL; c : BOOL; d : BOOL; e : BOOL;",
                 "a := s = 'abc'; b := s <> 'abd'; c := 'abc' < 'abd'; d := 'b' > 'abc'; e := s = 'ABC';"))
    assert r["P.a"] is True and r["P.b"] is True and r["P.c"] is True and r["P.d"] is True
    assert r["P.e"] is False          # string contents are case-sensitive


def test_string_and_number_mismatch_is_error():
    assert error_codes(prog("s : STRING; i : INT;", "i := s;"))


# ---------------------------------------------------------------- WSTRING

def test_wstring_basic():
    r = run(prog('w : WSTRING := "h$00E9llo"; n : INT; x : WSTRING; y : WSTRING(3); f : INT;', """
n := LEN(w);
x := CONCAT(w, "!");
y := w;
f := FIND(w, "llo");"""))
    assert r["P.w"] == "h\u00e9llo"
    assert r["P.n"] == 5
    assert r["P.x"] == "h\u00e9llo!"
    assert r["P.y"] == "h\u00e9l"
    assert r["P.f"] == 3


def test_wstring_functions():
    r = run(prog("a : WSTRING; b : WSTRING; c : WSTRING;",
                 'a := LEFT("\u00fcber", 2); b := MID("\u00fcber", 2, 3); c := INSERT("ab", "\u00df", 1);'))
    assert r["P.a"] == "\u00fcb" and r["P.b"] == "er" and r["P.c"] == "a\u00dfb"


def test_wstring_escapes():
    r = run(prog("w : WSTRING;", 'w := "a$"b$$c$N";'))
    assert r["P.w"] == 'a"b$c\n'


def test_string_wstring_not_mixed_implicitly():
    assert error_codes(prog("s : STRING; w : WSTRING;", "s := w;"))


def test_string_wstring_conversion():
    r = run(prog("s : STRING; w : WSTRING;", "w := STRING_TO_WSTRING('abc'); s := WSTRING_TO_STRING(\"xyz\");"))
    assert r["P.w"] == "abc" and r["P.s"] == "xyz"
