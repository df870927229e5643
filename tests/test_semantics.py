"""Language semantics of gridplc's Structured Text (IEC 61131-3, CODESYS where
IEC leaves it open). Expected values are worked out from the standard, not
taken from the compiler's output."""
from __future__ import annotations

import re
import struct

import pytest

from tests.stutil import build, error_codes, run


def f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def prog(decls: str, body: str, *, types: str = "", extra: str = "") -> str:
    return f"{types}\n{extra}\nPROGRAM P\nVAR\n{decls}\nEND_VAR\n{body}\nEND_PROGRAM\n"


def run_p(decls: str, body: str, cycles: int = 1, **kw) -> dict:
    types = kw.pop("types", "")
    extra = kw.pop("extra", "")
    return run(prog(decls, body, types=types, extra=extra), cycles, **kw)


# ---------------------------------------------------------------- assignment, IF

def test_assignment():
    r = run_p("x : INT; y : INT := 4;", "x := y; y := 9;")
    assert r["P.x"] == 4 and r["P.y"] == 9


@pytest.mark.parametrize("n,expected", [(1, 10), (5, 20), (7, 30), (100, 40)])
def test_if_elsif_else(n, expected):
    r = run_p(f"n : INT := {n}; x : INT;", """
IF n = 1 THEN
  x := 10;
ELSIF n < 6 THEN
  x := 20;
ELSIF n < 10 THEN
  x := 30;
ELSE
  x := 40;
END_IF;""")
    assert r["P.x"] == expected


def test_if_without_else_does_nothing_when_false():
    r = run_p("x : INT := 3;", "IF FALSE THEN x := 1; END_IF;")
    assert r["P.x"] == 3


# ---------------------------------------------------------------- CASE

@pytest.mark.parametrize("n,expected", [(1, 1), (2, 2), (3, 2), (4, 3), (7, 3), (9, 3),
                                        (10, 4), (0, 99), (-5, 99), (11, 99)])
def test_case_lists_ranges_else(n, expected):
    r = run_p(f"n : INT := {n}; x : INT;", """
CASE n OF
  1: x := 1;
  2, 3: x := 2;
  4..6, 7, 8..9: x := 3;
  10: x := 4;
ELSE
  x := 99;
END_CASE;""")
    assert r["P.x"] == expected


def test_case_without_else_no_match_leaves_value():
    r = run_p("n : INT := 5; x : INT := 7;", "CASE n OF 1: x := 1; 2: x := 2; END_CASE;")
    assert r["P.x"] == 7


def test_case_negative_labels():
    r = run_p("n : INT := -3; x : INT;", "CASE n OF -5..-2: x := 1; 0: x := 2; ELSE x := 3; END_CASE;")
    assert r["P.x"] == 1


MODE_T = "TYPE Mode : (IDLE, RUNNING, STOPPED, FAILED); END_TYPE"


@pytest.mark.parametrize("m,expected", [("IDLE", 1), ("RUNNING", 2), ("STOPPED", 3), ("FAILED", 0)])
def test_case_enum_labels(m, expected):
    r = run_p(f"m : Mode := Mode#{m}; x : INT;", """
CASE m OF
  Mode#IDLE: x := 1;
  RUNNING: x := 2;
  Mode#STOPPED: x := 3;
ELSE
  x := 0;
END_CASE;""", types=MODE_T)
    assert r["P.x"] == expected


def test_case_state_machine_over_scans():
    r = run_p("m : Mode; visits : INT;", """
CASE m OF
  IDLE: m := RUNNING;
  RUNNING: m := STOPPED;
  STOPPED: m := IDLE; visits := visits + 1;
ELSE
  m := FAILED;
END_CASE;""", cycles=7, types=MODE_T)
    # IDLE->RUNNING->STOPPED->IDLE (+1) ... 7 scans: 2 full rounds + 1 step
    assert r["P.m"] == "RUNNING"
    assert r["P.visits"] == 2


# ---------------------------------------------------------------- FOR

def test_for_sum_and_loop_variable_after():
    r = run_p("i : INT; s : INT;", "FOR i := 1 TO 5 DO s := s + i; END_FOR;")
    assert r["P.s"] == 15
    assert r["P.i"] == 6


def test_for_positive_step():
    r = run_p("i : INT; s : INT; n : INT;", "FOR i := 1 TO 6 BY 2 DO s := s + i; n := n + 1; END_FOR;")
    assert r["P.s"] == 1 + 3 + 5
    assert r["P.n"] == 3
    assert r["P.i"] == 7


def test_for_negative_step():
    r = run_p("i : INT; s : DINT; n : INT;", "FOR i := 10 TO 1 BY -3 DO s := s * 100 + i; n := n + 1; END_FOR;")
    # visits 10, 7, 4, 1 in that order
    assert r["P.n"] == 4
    assert r["P.s"] == ((10 * 100 + 7) * 100 + 4) * 100 + 1
    assert r["P.i"] == -2


def test_for_does_not_run_keeps_start_value():
    r = run_p("i : INT := 42; n : INT;", "FOR i := 5 TO 1 DO n := n + 1; END_FOR;")
    assert r["P.n"] == 0
    assert r["P.i"] == 5


def test_for_reads_start_and_end_once_before_the_variable_changes():
    # the bounds are the values when the loop starts, even when they name the loop variable
    r = run_p("i : INT := 3; n : INT;", "FOR i := i TO i + 2 DO n := n + 1; END_FOR;")
    assert r["P.n"] == 3 and r["P.i"] == 6
    r = run_p("i : INT := 3; n : INT; st : INT := 1;", "FOR i := i TO i + 2 BY st DO n := n + 1; END_FOR;")
    assert r["P.n"] == 3 and r["P.i"] == 6
    r = run_p("i : INT := 4; n : INT;", "FOR i := 1 TO i DO n := n + 1; END_FOR;")
    assert r["P.n"] == 4 and r["P.i"] == 5


def test_for_negative_step_does_not_run():
    r = run_p("i : INT := 42; n : INT;", "FOR i := 1 TO 5 BY -1 DO n := n + 1; END_FOR;")
    assert r["P.n"] == 0
    assert r["P.i"] == 1


def test_for_single_iteration():
    r = run_p("i : INT; n : INT;", "FOR i := 3 TO 3 DO n := n + 1; END_FOR;")
    assert r["P.n"] == 1
    assert r["P.i"] == 4


def test_for_bounds_from_variables_evaluated_once():
    r = run_p("i : INT; hi : INT := 3; n : INT;", "FOR i := 1 TO hi DO n := n + 1; END_FOR;")
    assert r["P.n"] == 3


def test_for_nested():
    r = run_p("i : INT; j : INT; n : INT;", "FOR i := 1 TO 3 DO FOR j := i TO 3 DO n := n + 1; END_FOR; END_FOR;")
    assert r["P.n"] == 3 + 2 + 1
    assert r["P.i"] == 4 and r["P.j"] == 4


# ---------------------------------------------------------------- WHILE, REPEAT

def test_while():
    r = run_p("i : INT := 1; p : INT := 1;", "WHILE i < 6 DO p := p * 2; i := i + 1; END_WHILE;")
    assert r["P.p"] == 32 and r["P.i"] == 6


def test_while_false_never_runs():
    r = run_p("i : INT := 10; n : INT;", "WHILE i < 6 DO n := n + 1; i := i + 1; END_WHILE;")
    assert r["P.n"] == 0


def test_repeat_runs_at_least_once():
    r = run_p("i : INT := 10; n : INT;", "REPEAT n := n + 1; i := i + 1; UNTIL i > 5 END_REPEAT;")
    assert r["P.n"] == 1 and r["P.i"] == 11


def test_repeat_until():
    r = run_p("i : INT; s : INT;", "REPEAT i := i + 1; s := s + i; UNTIL i >= 4 END_REPEAT;")
    assert r["P.s"] == 10 and r["P.i"] == 4


# ---------------------------------------------------------------- EXIT, CONTINUE

def test_exit_in_for_leaves_loop_variable_at_exit_value():
    r = run_p("i : INT; s : INT;", "FOR i := 1 TO 10 DO IF i = 4 THEN EXIT; END_IF; s := s + i; END_FOR;")
    assert r["P.s"] == 1 + 2 + 3
    assert r["P.i"] == 4


def test_exit_leaves_only_innermost_loop():
    r = run_p("i : INT; j : INT; n : INT;", """
FOR i := 1 TO 3 DO
  FOR j := 1 TO 10 DO
    IF j > 2 THEN EXIT; END_IF;
    n := n + 1;
  END_FOR;
END_FOR;""")
    assert r["P.n"] == 6
    assert r["P.i"] == 4


def test_exit_in_while_and_repeat():
    r = run_p("i : INT; k : INT;", """
WHILE TRUE DO i := i + 1; IF i = 5 THEN EXIT; END_IF; END_WHILE;
REPEAT k := k + 1; IF k = 3 THEN EXIT; END_IF; UNTIL FALSE END_REPEAT;""")
    assert r["P.i"] == 5 and r["P.k"] == 3


def test_continue_in_for():
    r = run_p("i : INT; s : INT;", "FOR i := 1 TO 6 DO IF i MOD 2 = 0 THEN CONTINUE; END_IF; s := s + i; END_FOR;")
    assert r["P.s"] == 1 + 3 + 5
    assert r["P.i"] == 7


def test_continue_in_while():
    r = run_p("i : INT; s : INT;", """
WHILE i < 6 DO
  i := i + 1;
  IF i MOD 2 = 0 THEN CONTINUE; END_IF;
  s := s + i;
END_WHILE;""")
    assert r["P.s"] == 1 + 3 + 5 and r["P.i"] == 6


def test_continue_in_repeat_evaluates_until():
    r = run_p("i : INT; s : INT;", """
REPEAT
  i := i + 1;
  IF i MOD 2 = 0 THEN CONTINUE; END_IF;
  s := s + i;
UNTIL i >= 6 END_REPEAT;""")
    # CONTINUE jumps to the UNTIL test; at i = 6 it ends the loop
    assert r["P.s"] == 1 + 3 + 5 and r["P.i"] == 6


def test_exit_outside_loop_is_error():
    assert "E0090" in error_codes(prog("x : INT;", "x := 1; EXIT;"))


# ---------------------------------------------------------------- RETURN

def test_return_in_function():
    src = """
FUNCTION Clamp10 : INT
VAR_INPUT v : INT; END_VAR
Clamp10 := v;
IF v > 10 THEN
  Clamp10 := 10;
  RETURN;
END_IF;
Clamp10 := v * 2;
END_FUNCTION
PROGRAM P
VAR a : INT; b : INT; END_VAR
a := Clamp10(50);
b := Clamp10(3);
END_PROGRAM
"""
    r = run(src)
    assert r["P.a"] == 10 and r["P.b"] == 6


def test_return_in_fb():
    src = """
FUNCTION_BLOCK Fb
VAR_INPUT go : BOOL; END_VAR
VAR_OUTPUT a : INT; b : INT; END_VAR
a := a + 1;
IF NOT go THEN RETURN; END_IF;
b := b + 1;
END_FUNCTION_BLOCK
PROGRAM P
VAR f : Fb; n : INT; a : INT; b : INT; END_VAR
n := n + 1;
f(go := n > 2);
a := f.a; b := f.b;
END_PROGRAM
"""
    r = run(src, 5)
    assert r["P.a"] == 5 and r["P.b"] == 3


def test_return_in_program():
    r = run_p("n : INT; m : INT;", "n := n + 1; IF n > 2 THEN RETURN; END_IF; m := m + 1;", cycles=5)
    assert r["P.n"] == 5 and r["P.m"] == 2


# ---------------------------------------------------------------- lexical

def test_empty_statements():
    r = run_p("x : INT;", ";;; x := 1;; ; IF TRUE THEN ; END_IF; ;")
    assert r["P.x"] == 1


def test_nested_and_line_comments():
    src = """
(* header (* nested *) still comment x := 100; *)
PROGRAM P // trailing comment
VAR
  x : INT; // x := 50;
END_VAR
(* (* (* deep *) *) x := 7; *)
x := x + 1; // x := 1000;
(* x := 2000; *) x := x + 2;
END_PROGRAM
"""
    assert run(src)["P.x"] == 3


def test_comment_marker_inside_string_is_text():
    r = run_p("s : STRING;", "s := '(* not a comment *) // nor this';")
    assert r["P.s"] == "(* not a comment *) // nor this"


def test_pragmas_accepted():
    src = """
{attribute 'qualified_only'}
TYPE Col : (RED, GREEN); END_TYPE
{attribute 'hide'}
FUNCTION_BLOCK Fb
VAR_OUTPUT q : INT; END_VAR
q := 3;
END_FUNCTION_BLOCK
PROGRAM P
VAR
  {attribute 'symbol' := 'read'}
  x : INT;
  f : Fb;
  c : Col := Col#GREEN;
END_VAR
{warning 'todo'}
f();
x := f.q;
END_PROGRAM
"""
    r = run(src)
    assert r["P.x"] == 3 and r["P.c"] == "GREEN"


def test_case_insensitive_keywords():
    src = """
program P
var x : int; i : Int; END_var
if TRUE then x := 1; End_If;
For i := 1 tO 3 By 1 Do x := x + 1; end_for;
END_PROGRAM
"""
    r = run(src)
    assert r["P.x"] == 4


def test_case_insensitive_identifiers():
    r = run_p("myVar : INT;", "MYVAR := 5; myvar := MyVar + 1;")
    assert r["P.myVar"] == 6


def test_case_insensitive_duplicate_is_error():
    assert "E0010" in error_codes(prog("speed : INT; SPEED : INT;", "speed := 1;"))


def test_case_insensitive_type_and_pou_names():
    src = """
TYPE Mode : (IDLE, BUSY); END_TYPE
FUNCTION Twice : INT VAR_INPUT v : INT; END_VAR Twice := v * 2; END_FUNCTION
PROGRAM P
VAR m : MODE := mode#busy; x : INT; END_VAR
x := TWICE(4);
END_PROGRAM
"""
    r = run(src)
    assert r["P.x"] == 8 and r["P.m"] == "BUSY"


# ---------------------------------------------------------------- precedence

def test_precedence_arithmetic():
    r = run_p("a : INT; b : INT; c : INT; d : INT;",
              "a := 2 + 3 * 4; b := (2 + 3) * 4; c := 20 - 6 - 4; d := 100 / 10 / 5;")
    assert r["P.a"] == 14 and r["P.b"] == 20 and r["P.c"] == 10 and r["P.d"] == 2


def test_precedence_mod_and_unary_minus():
    r = run_p("a : INT; b : INT; x : INT := 3;", "a := 2 + 7 MOD 4 * 2; b := -x * 2 + 10;")
    assert r["P.a"] == 2 + (7 % 4) * 2 and r["P.b"] == 4


def test_precedence_not_and():
    # NOT binds tighter than AND: (NOT a) AND b
    r = run_p("a : BOOL; b : BOOL; x : BOOL; y : BOOL;", "x := NOT a AND b; y := NOT (a AND b);")
    assert r["P.x"] is False and r["P.y"] is True


def test_precedence_and_or_xor():
    r = run_p("t : BOOL := TRUE; f : BOOL; x : BOOL; y : BOOL; z : BOOL;",
              "x := t OR f AND f; y := t XOR t OR t; z := f AND f OR t;")
    # AND > XOR > OR
    assert r["P.x"] is True      # t OR (f AND f)
    assert r["P.y"] is True      # (t XOR t) OR t
    assert r["P.z"] is True


def test_precedence_xor_vs_and():
    r = run_p("t : BOOL := TRUE; f : BOOL; x : BOOL;", "x := t XOR t AND f;")
    # t XOR (t AND f) = TRUE; (t XOR t) AND f would be FALSE
    assert r["P.x"] is True


def test_comparison_chains_with_and_or():
    r = run_p("x : INT := 5; y : INT := 0; a : BOOL; b : BOOL; c : BOOL; d : BOOL;", """
a := x > 1 AND x < 10;
b := x > 6 OR y = 0;
c := x + 1 > 5 AND y <> 0 OR x = 5;
d := x >= 5 AND x <= 5 AND NOT (y > 0);""")
    assert r["P.a"] is True and r["P.b"] is True and r["P.c"] is True and r["P.d"] is True


def test_ampersand_is_and():
    r = run_p("a : BOOL := TRUE; b : BOOL; x : BOOL; y : BOOL;", "x := a & b; y := a & NOT b;")
    assert r["P.x"] is False and r["P.y"] is True


def test_power_operator():
    r = run_p("a : LREAL; b : LREAL; c : LREAL; d : LREAL;",
              "a := 2.0 ** 10.0; b := 2.0 * 3.0 ** 2.0; c := -2.0 ** 2.0; d := 1.0 + 2.0 ** 3.0;")
    assert r["P.a"] == 1024.0
    assert r["P.b"] == 18.0          # ** binds tighter than *
    assert r["P.c"] == -4.0          # ** binds tighter than unary minus (IEC table)
    assert r["P.d"] == 9.0


# ---------------------------------------------------------------- literals

def test_integer_literals():
    r = run_p("a : DINT; b : DINT; c : DINT; d : DINT; e : DINT; f : DINT;",
              "a := 1_000; b := 2#1010; c := 8#17; d := 16#FF; e := 16#ff_ff; f := 2#1111_0000;")
    assert (r["P.a"], r["P.b"], r["P.c"], r["P.d"], r["P.e"], r["P.f"]) == (1000, 10, 15, 255, 65535, 240)


def test_typed_literals():
    r = run_p("i : INT; w : WORD; x : REAL; b : BYTE; d : DINT; l : LREAL;",
              "i := INT#5; w := WORD#16#FF; x := REAL#1.5; b := BYTE#2#1010_1010; d := DINT#-7; l := LREAL#2.25;")
    assert r["P.i"] == 5 and r["P.w"] == 255 and r["P.x"] == 1.5 and r["P.b"] == 170
    assert r["P.d"] == -7 and r["P.l"] == 2.25


def test_real_literals_with_exponent():
    r = run_p("a : LREAL; b : LREAL; c : LREAL; d : REAL;", "a := 1.5E3; b := 2.5e-2; c := 1E2; d := 1.0E-3;")
    assert r["P.a"] == 1500.0 and r["P.b"] == 0.025 and r["P.c"] == 100.0
    assert r["P.d"] == f32(0.001)


def test_time_literals():
    r = run_p("a : TIME; b : TIME; c : TIME; d : TIME; e : TIME; f : TIME;",
              "a := T#1h2m3s4ms; b := TIME#500ms; c := T#1.5s; d := t#2m; e := T#1d; f := T#1_000ms;")
    assert r["P.a"] == ((1 * 60 + 2) * 60 + 3) * 1000 + 4
    assert r["P.b"] == 500
    assert r["P.c"] == 1500
    assert r["P.d"] == 120_000
    assert r["P.e"] == 86_400_000
    assert r["P.f"] == 1000


def test_time_arithmetic_and_compare():
    r = run_p("a : TIME := T#1s; b : TIME; c : BOOL;", "b := a + T#250ms; c := b > T#1s200ms;")
    assert r["P.b"] == 1250 and r["P.c"] is True


def test_date_tod_dt_literals():
    # CODESYS representation: DATE and DT in seconds since 1970-01-01, TOD in ms since midnight
    r = run_p("d : DATE; t : TOD; dt1 : DT; d2 : DATE; t2 : TIME_OF_DAY; dt2 : DATE_AND_TIME; later : BOOL;", """
d := D#1970-01-02;
t := TOD#12:30:15;
dt1 := DT#1970-01-01-00:01:00;
d2 := DATE#2000-03-01;
t2 := TIME_OF_DAY#00:00:01.5;
dt2 := DATE_AND_TIME#2024-02-29-23:59:59;
later := D#2024-01-02 > D#2024-01-01;""")
    assert r["P.d"] == 86400
    assert r["P.t"] == (12 * 3600 + 30 * 60 + 15) * 1000
    assert r["P.dt1"] == 60
    assert r["P.d2"] == 11017 * 86400          # days from 1970-01-01 to 2000-03-01
    assert r["P.t2"] == 1500
    assert r["P.dt2"] == 1709251199            # 2024-02-29T23:59:59Z
    assert r["P.later"] is True


def test_invalid_date_literal_is_error():
    assert "E0003" in error_codes(prog("d : DATE;", "d := D#2023-02-29;"))


def test_string_escapes():
    r = run_p("a : STRING; b : STRING; c : STRING; d : STRING; e : STRING; f : STRING;",
              "a := 'a$'b'; b := '$N'; c := '$41'; d := '$$'; e := '$T$R$L'; f := 'x$0Ay';")
    assert r["P.a"] == "a'b"
    assert r["P.b"] == "\n"
    assert r["P.c"] == "A"
    assert r["P.d"] == "$"
    assert r["P.e"] == "\t\r\n"
    assert r["P.f"] == "x\ny"


def test_bad_string_escape_is_error():
    assert "E0003" in error_codes(prog("s : STRING;", "s := 'a$Qb';"))


# ---------------------------------------------------------------- enums

def test_enum_qualified_and_bare():
    r = run_p("a : Mode; b : Mode; c : Mode; eq : BOOL; ne : BOOL;", """
a := Mode#STOPPED; b := FAILED;
eq := a = STOPPED; ne := b <> Mode#FAILED;""", types=MODE_T)
    assert r["P.a"] == "STOPPED" and r["P.b"] == "FAILED"
    assert r["P.c"] == "IDLE"          # default: first value
    assert r["P.eq"] is True and r["P.ne"] is False


def test_enum_explicit_values_and_default():
    src = """
TYPE M : (A := 1, B := 5) := B; END_TYPE
PROGRAM P
VAR m : M; n : M := A; isB : BOOL; END_VAR
isB := m = B;
END_PROGRAM
"""
    e = build(src)
    try:
        assert e.run(1) is None
        snap = e.snapshot()
        assert snap["P.m"] == "B"            # declared default
        assert snap["P.n"] == "A"
        assert snap["P.isB"] is True
        assert e.tag("P.m").get() == 5
        assert e.tag("P.n").get() == 1
    finally:
        e.close()


def test_enum_implicit_values_follow_previous():
    src = """
TYPE M : (A, B := 10, C); END_TYPE
PROGRAM P
VAR a : M := A; b : M := B; c : M := C; END_VAR
a := a;
END_PROGRAM
"""
    e = build(src)
    try:
        assert e.tag("P.a").get() == 0
        assert e.tag("P.b").get() == 10
        assert e.tag("P.c").get() == 11
    finally:
        e.close()


# ---------------------------------------------------------------- structs

STRUCT_T = """
TYPE Point :
STRUCT
  x : INT := 1;
  y : INT := 2;
END_STRUCT;
END_TYPE
TYPE Seg :
STRUCT
  a : Point;
  b : Point := (x := 10, y := 20);
  name : STRING(8) := 'seg';
END_STRUCT;
END_TYPE
"""


def test_struct_initial_values_and_nested():
    r = run_p("s : Seg; p : Point := (y := 7); q : Point;", "q.x := s.b.y + p.y;", types=STRUCT_T)
    assert r["P.s"] == {"a": {"x": 1, "y": 2}, "b": {"x": 10, "y": 20}, "name": "seg"}
    assert r["P.p"] == {"x": 1, "y": 7}
    assert r["P.q"] == {"x": 27, "y": 2}


def test_struct_assignment_is_copy():
    r = run_p("a : Point; b : Point; s1 : Seg; s2 : Seg;", """
a.x := 5;
b := a;
b.x := 99;
s2 := s1;
s2.a.y := 77;
s2.name := 'other';""", types=STRUCT_T)
    assert r["P.a"] == {"x": 5, "y": 2}
    assert r["P.b"] == {"x": 99, "y": 2}
    assert r["P.s1"]["a"] == {"x": 1, "y": 2}
    assert r["P.s1"]["name"] == "seg"
    assert r["P.s2"]["a"] == {"x": 1, "y": 77}


def test_struct_copy_of_nested_member():
    r = run_p("s : Seg; p : Point;", "p := s.b; p.x := 0;", types=STRUCT_T)
    assert r["P.s"]["b"] == {"x": 10, "y": 20}
    assert r["P.p"] == {"x": 0, "y": 20}


def test_array_of_structs():
    r = run_p("pts : ARRAY[1..3] OF Point; i : INT; s : INT;", """
FOR i := 1 TO 3 DO pts[i].x := i * 10; END_FOR;
pts[2].y := -1;
s := pts[1].x + pts[2].y + pts[3].x;""", types=STRUCT_T)
    assert r["P.pts"] == [{"x": 10, "y": 2}, {"x": 20, "y": -1}, {"x": 30, "y": 2}]
    assert r["P.s"] == 10 - 1 + 30


def test_array_element_struct_copy():
    r = run_p("pts : ARRAY[1..2] OF Point; p : Point;",
              "p := pts[1]; p.x := 50; pts[2] := p; p.y := 60;", types=STRUCT_T)
    assert r["P.pts"] == [{"x": 1, "y": 2}, {"x": 50, "y": 2}]
    assert r["P.p"] == {"x": 50, "y": 60}


def test_array_assignment_is_copy():
    r = run_p("a : ARRAY[1..3] OF INT := [1, 2, 3]; b : ARRAY[1..3] OF INT;", "b := a; b[1] := 100;")
    assert r["P.a"] == [1, 2, 3] and r["P.b"] == [100, 2, 3]


# ---------------------------------------------------------------- arrays

def test_multidim_array_with_initialiser():
    r = run_p("a : ARRAY[1..2, 0..2] OF INT := [1, 2, 3(7)]; x : INT; y : INT;",
              "x := a[2, 1]; y := a[1, 2];")
    # row-major: a[1,0]=1 a[1,1]=2 a[1,2]=7 a[2,0]=7 a[2,1]=7 a[2,2]=0 (unlisted: default)
    assert r["P.a"] == [[1, 2, 7], [7, 7, 0]]
    assert r["P.x"] == 7 and r["P.y"] == 7


def test_multidim_array_full_initialiser_and_write():
    r = run_p("a : ARRAY[1..2, 0..2] OF INT := [1, 2, 3(0)]; i : INT; j : INT;", """
FOR i := 1 TO 2 DO FOR j := 0 TO 2 DO a[i, j] := a[i, j] + i * 10 + j; END_FOR; END_FOR;""")
    assert r["P.a"] == [[11, 13, 12], [20, 21, 22]]


def test_array_negative_bounds():
    r = run_p("a : ARRAY[-2..2] OF INT; i : INT; s : INT;", """
FOR i := -2 TO 2 DO a[i] := i * i; END_FOR;
s := a[-2] + a[0] + a[1];""")
    assert r["P.a"] == [4, 1, 0, 1, 4]
    assert r["P.s"] == 5


def test_constant_index_outside_bounds_is_compile_error():
    assert "E0031" in error_codes(prog("a : ARRAY[1..8] OF INT;", "a[0] := 1;"))
    assert "E0031" in error_codes(prog("a : ARRAY[-2..2] OF INT;", "a[3] := 1;"))


# ---------------------------------------------------------------- subrange, alias

def test_subrange_type():
    r = run_p("s : INT(0..100); lo : INT(5..10); x : INT;", "s := 40; x := s + lo;")
    assert r["P.s"] == 40
    assert r["P.lo"] == 5          # default of a subrange is its lower limit
    assert r["P.x"] == 45


def test_subrange_named_type():
    r = run_p("p : Pct := 50; q : Pct;", "q := p + 1;", types="TYPE Pct : INT(0..100); END_TYPE")
    assert r["P.p"] == 50 and r["P.q"] == 51


def test_subrange_constant_out_of_range_is_error():
    assert error_codes(prog("s : INT(0..100);", "s := 200;"))


def test_alias_types():
    types = """
TYPE Volt : REAL; END_TYPE
TYPE Count : INT := 7; END_TYPE
"""
    r = run_p("v : Volt := 3.5; c : Count; d : Count := 2; e : INT;", "e := c + d; v := v * 2.0;", types=types)
    assert r["P.v"] == 7.0 and r["P.c"] == 7 and r["P.e"] == 9


# ---------------------------------------------------------------- POUs

def test_fb_instance_keeps_state_function_does_not():
    src = """
FUNCTION_BLOCK Counter
VAR_OUTPUT n : INT; END_VAR
n := n + 1;
END_FUNCTION_BLOCK
FUNCTION Bump : INT
VAR k : INT; END_VAR
k := k + 1;
Bump := k;
END_FUNCTION
PROGRAM P
VAR c1 : Counter; c2 : Counter; a : INT; b : INT; f : INT; END_VAR
c1();
c1();
c2();
a := c1.n; b := c2.n;
f := Bump() + Bump();
END_PROGRAM
"""
    r = run(src, 3)
    assert r["P.a"] == 6 and r["P.b"] == 3
    assert r["P.f"] == 2


def test_function_local_initial_value_each_call():
    src = """
FUNCTION F : INT
VAR k : INT := 10; END_VAR
k := k + 1;
F := k;
END_FUNCTION
PROGRAM P
VAR a : INT; END_VAR
a := a + F();
END_PROGRAM
"""
    assert run(src, 3)["P.a"] == 33


FB_BYVAL = """
TYPE Pair : STRUCT a : INT; b : INT; END_STRUCT; END_TYPE
FUNCTION_BLOCK Keep
VAR_INPUT arr : ARRAY[1..3] OF INT; p : Pair; END_VAR
VAR_OUTPUT sum : INT; END_VAR
sum := arr[1] + arr[2] + arr[3] + p.a + p.b;
END_FUNCTION_BLOCK
"""


def test_var_input_array_and_struct_passed_by_value():
    src = FB_BYVAL + """
PROGRAM P
VAR k : Keep; data : ARRAY[1..3] OF INT := [1, 2, 3]; pr : Pair := (a := 10, b := 20);
    before : INT; after : INT; kept1 : INT; keptA : INT; END_VAR
k(arr := data, p := pr);
before := k.sum;
data[1] := 100;
pr.a := 1000;
kept1 := k.arr[1];
keptA := k.p.a;
k();
after := k.sum;
END_PROGRAM
"""
    r = run(src)
    assert r["P.before"] == 36
    assert r["P.kept1"] == 1 and r["P.keptA"] == 10       # FB holds its own copy
    assert r["P.after"] == 36                             # call without inputs keeps them
    assert r["P.data"] == [100, 2, 3]


def test_fb_modifying_input_copy_does_not_change_caller():
    # The FB changes its copy of an array/struct input by handing it to a
    # VAR_IN_OUT of a helper; the caller's variables must not change.
    src = """
TYPE Pair : STRUCT a : INT; b : INT; END_STRUCT; END_TYPE
FUNCTION_BLOCK Bumper
VAR_IN_OUT arr : ARRAY[1..3] OF INT; p : Pair; END_VAR
arr[1] := arr[1] + 50;
p.a := p.a + 50;
END_FUNCTION_BLOCK
FUNCTION_BLOCK Holder
VAR_INPUT arr : ARRAY[1..3] OF INT; p : Pair; END_VAR
VAR_OUTPUT first : INT; pa : INT; END_VAR
VAR localArr : ARRAY[1..3] OF INT; localP : Pair; b : Bumper; END_VAR
localArr := arr;
localP := p;
b(arr := localArr, p := localP);
first := localArr[1];
pa := localP.a;
END_FUNCTION_BLOCK
PROGRAM P
VAR h : Holder; data : ARRAY[1..3] OF INT := [1, 2, 3]; pr : Pair := (a := 10, b := 20);
    first : INT; pa : INT; END_VAR
h(arr := data, p := pr);
first := h.first; pa := h.pa;
END_PROGRAM
"""
    r = run(src)
    assert r["P.first"] == 51 and r["P.pa"] == 60
    assert r["P.data"] == [1, 2, 3]
    assert r["P.pr"] == {"a": 10, "b": 20}


def test_function_input_array_by_value():
    src = """
FUNCTION SumAndClear : INT
VAR_INPUT a : ARRAY[1..3] OF INT; END_VAR
VAR tmp : ARRAY[1..3] OF INT; END_VAR
tmp := a;
SumAndClear := tmp[1] + tmp[2] + tmp[3];
END_FUNCTION
PROGRAM P
VAR d : ARRAY[1..3] OF INT := [4, 5, 6]; s : INT; END_VAR
s := SumAndClear(d);
END_PROGRAM
"""
    r = run(src)
    assert r["P.s"] == 15 and r["P.d"] == [4, 5, 6]


def test_var_in_out_scalar_by_reference():
    src = """
FUNCTION_BLOCK Swap
VAR_IN_OUT a : INT; b : INT; END_VAR
VAR t : INT; END_VAR
t := a; a := b; b := t;
END_FUNCTION_BLOCK
FUNCTION Inc : BOOL
VAR_IN_OUT v : DINT; END_VAR
v := v + 1;
Inc := TRUE;
END_FUNCTION
PROGRAM P
VAR s : Swap; x : INT := 1; y : INT := 2; n : DINT := 41; ok : BOOL; END_VAR
s(a := x, b := y);
ok := Inc(n);
END_PROGRAM
"""
    r = run(src)
    assert r["P.x"] == 2 and r["P.y"] == 1 and r["P.n"] == 42 and r["P.ok"] is True


def test_var_in_out_array_and_struct_by_reference():
    src = """
TYPE Pair : STRUCT a : INT; b : INT; END_STRUCT; END_TYPE
FUNCTION_BLOCK Fill
VAR_INPUT v : INT; END_VAR
VAR_IN_OUT arr : ARRAY[1..4] OF INT; p : Pair; END_VAR
VAR i : INT; END_VAR
FOR i := 1 TO 4 DO arr[i] := v + i; END_FOR;
p.b := v;
END_FUNCTION_BLOCK
PROGRAM P
VAR f : Fill; data : ARRAY[1..4] OF INT; pr : Pair; END_VAR
f(v := 10, arr := data, p := pr);
END_PROGRAM
"""
    r = run(src)
    assert r["P.data"] == [11, 12, 13, 14]
    assert r["P.pr"] == {"a": 0, "b": 10}


def test_var_in_out_array_element():
    src = """
FUNCTION Dbl : BOOL
VAR_IN_OUT v : INT; END_VAR
v := v * 2;
Dbl := TRUE;
END_FUNCTION
PROGRAM P
VAR a : ARRAY[1..3] OF INT := [1, 2, 3]; ok : BOOL; END_VAR
ok := Dbl(a[2]);
END_PROGRAM
"""
    assert run(src)["P.a"] == [1, 4, 3]


def test_var_in_out_needs_variable():
    src = """
FUNCTION Inc : BOOL
VAR_IN_OUT v : INT; END_VAR
v := v + 1; Inc := TRUE;
END_FUNCTION
PROGRAM P
VAR x : INT; ok : BOOL; END_VAR
ok := Inc(x + 1);
END_PROGRAM
"""
    assert "E0052" in error_codes(src)


FB_CALLS = """
FUNCTION_BLOCK Calc
VAR_INPUT a : INT; b : INT := 100; END_VAR
VAR_OUTPUT sum : INT; diff : INT; END_VAR
sum := a + b;
diff := a - b;
END_FUNCTION_BLOCK
"""


def test_fb_call_formal_and_outputs():
    src = FB_CALLS + """
PROGRAM P
VAR c : Calc; s : INT; d : INT; s2 : INT; END_VAR
c(a := 5, b := 3, sum => s, diff => d);
s2 := c.sum;
END_PROGRAM
"""
    r = run(src)
    assert r["P.s"] == 8 and r["P.d"] == 2 and r["P.s2"] == 8


def test_fb_call_formal_any_order_and_omitted_input():
    src = FB_CALLS + """
PROGRAM P
VAR c : Calc; s : INT; c2 : Calc; s2 : INT; END_VAR
c(diff => s2, a := 1);       (* b keeps its initial value 100 *)
s := c.sum;
c2(b := 1, a := 2);
c2(a := 7);                  (* b keeps its last value 1 *)
END_PROGRAM
"""
    r = run(src)
    assert r["P.s"] == 101 and r["P.s2"] == -99
    assert r["P.c2"]["sum"] == 8


def test_fb_call_positional():
    src = FB_CALLS + """
PROGRAM P
VAR c : Calc; s : INT; d : INT; END_VAR
c(9, 4);
s := c.sum; d := c.diff;
END_PROGRAM
"""
    r = run(src)
    assert r["P.s"] == 13 and r["P.d"] == 5


def test_fb_output_not_writable_from_outside():
    src = FB_CALLS + """
PROGRAM P
VAR c : Calc; END_VAR
c.sum := 3;
END_PROGRAM
"""
    assert "E0042" in error_codes(src)


FUNC = """
FUNCTION Lin : DINT
VAR_INPUT x : DINT; k : DINT := 3; d : DINT := 1000; END_VAR
Lin := k * x + d;
END_FUNCTION
"""


def test_function_formal_positional_and_defaults():
    src = FUNC + """
PROGRAM P
VAR a : DINT; b : DINT; c : DINT; e : DINT; END_VAR
a := Lin(2, 5, 7);
b := Lin(x := 2, d := 1);
c := Lin(d := 0, x := 10, k := -1);
e := Lin(x := 1);
END_PROGRAM
"""
    r = run(src)
    assert r["P.a"] == 17
    assert r["P.b"] == 7
    assert r["P.c"] == -10
    assert r["P.e"] == 1003


def test_function_in_expression_and_nested():
    src = FUNC + """
PROGRAM P
VAR a : DINT; END_VAR
a := Lin(Lin(1, 1, 1), 2, 0) * 2 + 1;
END_PROGRAM
"""
    assert run(src)["P.a"] == ((1 + 1) * 2) * 2 + 1


def test_function_unknown_parameter():
    src = FUNC + """
PROGRAM P
VAR a : DINT; END_VAR
a := Lin(x := 1, zz := 2);
END_PROGRAM
"""
    assert "E0051" in error_codes(src)


def test_var_temp_reinitialised_each_call():
    src = """
FUNCTION_BLOCK T
VAR_OUTPUT o : INT; p : INT; END_VAR
VAR_TEMP t : INT; u : INT := 5; END_VAR
VAR keep : INT; END_VAR
t := t + 1;
u := u + 1;
keep := keep + 1;
o := t + u;
p := keep;
END_FUNCTION_BLOCK
PROGRAM P
VAR f : T; o : INT; p : INT; END_VAR
VAR_TEMP pt : INT; END_VAR
f();
f();
pt := pt + 1;
o := f.o * 10 + pt;
p := f.p;
END_PROGRAM
"""
    r = run(src, 3)
    assert r["P.o"] == 71
    assert r["P.p"] == 6


# ---------------------------------------------------------------- globals, constants

def test_var_global_top_level():
    src = """
VAR_GLOBAL
  g : INT := 5;
  gc : INT;
END_VAR
PROGRAM P
VAR_EXTERNAL g : INT; gc : INT; END_VAR
VAR x : INT; END_VAR
g := g + 1;
gc := g * 2;
x := gc;
END_PROGRAM
"""
    r = run(src, 2)
    assert r["P.g"] == 7 and r["P.x"] == 14


def test_var_global_constant():
    src = """
VAR_GLOBAL CONSTANT
  N : INT := 4;
END_VAR
PROGRAM P
VAR_EXTERNAL CONSTANT N : INT; END_VAR
VAR a : ARRAY[1..N] OF INT; i : INT; END_VAR
FOR i := 1 TO N DO a[i] := i; END_FOR;
END_PROGRAM
"""
    assert run(src)["P.a"] == [1, 2, 3, 4]


def test_global_shared_between_fb_and_program():
    src = """
VAR_GLOBAL hits : INT; END_VAR
FUNCTION_BLOCK Hit
VAR_EXTERNAL hits : INT; END_VAR
hits := hits + 1;
END_FUNCTION_BLOCK
PROGRAM P
VAR_EXTERNAL hits : INT; END_VAR
VAR h1 : Hit; h2 : Hit; seen : INT; END_VAR
h1();
h2();
seen := hits;
END_PROGRAM
"""
    r = run(src, 2)
    assert r["P.seen"] == 4


def test_constant_variables():
    src = """
PROGRAM P
VAR CONSTANT
  SIZE : INT := 3;
  HALF : INT := SIZE * 2;
  LIM : REAL := 3.65;
END_VAR
VAR a : ARRAY[1..SIZE] OF INT; x : INT; over : BOOL; v : REAL := 3.7; END_VAR
x := SIZE + HALF;
over := v > LIM;
a[SIZE] := 1;
END_PROGRAM
"""
    r = run(src)
    assert r["P.x"] == 9 and r["P.over"] is True and r["P.a"] == [0, 0, 1]


def test_assignment_to_constant_is_error():
    src = """
PROGRAM P
VAR CONSTANT lim : REAL := 3.65; END_VAR
lim := 3.7;
END_PROGRAM
"""
    assert "E0040" in error_codes(src)


def test_assignment_to_input_is_error():
    src = """
FUNCTION_BLOCK F
VAR_INPUT x : INT; END_VAR
x := x + 1;
END_FUNCTION_BLOCK
PROGRAM P VAR f : F; END_VAR f(x := 1); END_PROGRAM
"""
    assert "E0041" in error_codes(src)


def test_assignment_to_for_variable_is_error():
    assert "E0043" in error_codes(prog("i : INT;", "FOR i := 1 TO 10 DO i := i + 1; END_FOR;"))


# ---------------------------------------------------------------- configuration and tasks

CONFIG = """
PROGRAM Fast
VAR_EXTERNAL seq : ARRAY[1..20] OF INT; n : INT; END_VAR
VAR runs : INT; END_VAR
runs := runs + 1;
n := n + 1;
seq[n] := 1;
END_PROGRAM

PROGRAM Slow
VAR_EXTERNAL seq : ARRAY[1..20] OF INT; n : INT; END_VAR
VAR runs : INT; END_VAR
runs := runs + 1;
n := n + 1;
seq[n] := 2;
END_PROGRAM

CONFIGURATION Site
VAR_GLOBAL
  seq : ARRAY[1..20] OF INT;
  n : INT;
END_VAR
(* the slow task is declared first: priority, not text order, decides *)
TASK SlowTask (INTERVAL := T#30ms, PRIORITY := 2);
TASK FastTask (INTERVAL := T#10ms, PRIORITY := 1);
PROGRAM slowInst WITH SlowTask : Slow;
PROGRAM fastInst WITH FastTask : Fast;
END_CONFIGURATION
"""


def test_configuration_two_tasks_counts_and_priority():
    r = run(CONFIG, 7)          # base ticks of 10 ms: t = 0, 10, ..., 60
    assert r["fastInst.runs"] == 7
    assert r["slowInst.runs"] == 3           # t = 0, 30, 60
    # at t = 0, 30, 60 both run, the priority-1 task first
    seq = r["fastInst.seq"]
    assert seq[:10] == [1, 2, 1, 1, 1, 2, 1, 1, 1, 2]
    assert r["fastInst.n"] == 10


def test_configuration_with_resource():
    src = """
PROGRAM Main
VAR_EXTERNAL total : DINT; END_VAR
VAR k : DINT; END_VAR
k := k + 1;
total := total + k;
END_PROGRAM
CONFIGURATION Plant
RESOURCE Cpu ON PLC
VAR_GLOBAL total : DINT; END_VAR
TASK Main20 (INTERVAL := T#20ms, PRIORITY := 3);
PROGRAM m1 WITH Main20 : Main;
END_RESOURCE
END_CONFIGURATION
"""
    r = run(src, 4)
    assert r["m1.k"] == 4 and r["m1.total"] == 10


def test_configuration_unknown_task_is_error():
    src = """
PROGRAM Main VAR k : INT; END_VAR k := k + 1; END_PROGRAM
CONFIGURATION C
TASK Fast (INTERVAL := T#10ms, PRIORITY := 1);
PROGRAM m WITH Fsat : Main;
END_CONFIGURATION
"""
    assert "E0070" in error_codes(src)


# ---------------------------------------------------------------- integer arithmetic

@pytest.mark.parametrize("typ,start,op,expected", [
    ("SINT", "127", "+ 1", -128),
    ("SINT", "-128", "- 1", 127),
    ("USINT", "255", "+ 1", 0),
    ("USINT", "0", "- 1", 255),
    ("INT", "32767", "+ 1", -32768),
    ("INT", "-32768", "- 1", 32767),
    ("UINT", "65535", "+ 1", 0),
    ("UINT", "0", "- 1", 65535),
    ("DINT", "2147483647", "+ 1", -2147483648),
    ("DINT", "-2147483648", "- 1", 2147483647),
    ("UDINT", "4294967295", "+ 1", 0),
    ("UDINT", "0", "- 1", 4294967295),
    ("LINT", "9223372036854775807", "+ 1", -9223372036854775808),
    ("LINT", "-9223372036854775808", "- 1", 9223372036854775807),
    ("ULINT", "18446744073709551615", "+ 1", 0),
    ("ULINT", "0", "- 1", 18446744073709551615),
    ("SINT", "64", "* 2", -128),
    ("INT", "300", "* 300", 90000 - 65536 * 1),
    ("USINT", "16", "* 16", 0),
    ("DINT", "65536", "* 65536", 0),
])
def test_integer_wrap(typ, start, op, expected):
    r = run_p(f"x : {typ} := {start};", f"x := x {op};")
    assert r["P.x"] == expected


def test_integer_wrap_negation():
    r = run_p("s : SINT := -128; i : INT := -32768; t : SINT;", "t := -s; i := -i;")
    assert r["P.t"] == -128 and r["P.i"] == -32768


def test_integer_wrap_accumulates_over_scans():
    r = run_p("x : SINT := 120;", "x := x + 5;", cycles=3)
    assert r["P.x"] == 135 - 256


def test_bitstring_wrap_via_shift_and_conversion():
    r = run_p("b : BYTE := 16#81; w : WORD := 16#C001; b2 : BYTE; w2 : WORD;",
              "b := SHL(b, 1); w := SHL(w, 2); b2 := UINT_TO_BYTE(256 + 7); w2 := DINT_TO_WORD(-1);")
    assert r["P.b"] == 0x02 and r["P.w"] == 0x0004 and r["P.b2"] == 7 and r["P.w2"] == 0xFFFF


def test_bitwise_ops_on_words():
    r = run_p("a : WORD := 16#F0F0; b : WORD := 16#FF00; x : WORD; o : WORD; n : WORD; y : BYTE;",
              "x := a AND b; o := a OR b; n := NOT a; y := BYTE#16#0F XOR BYTE#16#FF;")
    assert r["P.x"] == 0xF000 and r["P.o"] == 0xFFF0 and r["P.n"] == 0x0F0F and r["P.y"] == 0xF0


@pytest.mark.parametrize("a,b,q,m", [(-7, 2, -3, -1), (7, -2, -3, 1), (7, 2, 3, 1), (-7, -2, 3, -1),
                                     (6, 3, 2, 0), (-1, 5, 0, -1)])
def test_integer_division_and_mod(a, b, q, m):
    r = run_p(f"a : INT := {a}; b : INT := {b}; q : INT; m : INT;", "q := a / b; m := a MOD b;")
    assert r["P.q"] == q and r["P.m"] == m


def test_integer_division_and_mod_constants():
    r = run_p("a : INT; b : INT; c : INT; d : INT;",
              "a := -7 / 2; b := 7 / -2; c := -7 MOD 2; d := 7 MOD -2;")
    assert (r["P.a"], r["P.b"], r["P.c"], r["P.d"]) == (-3, -3, -1, 1)


def test_division_min_by_minus_one_wraps():
    r = run_p("a : INT := -32768; b : INT := -1; q : INT;", "q := a / b;")
    assert r["P.q"] == -32768


# ---------------------------------------------------------------- REAL

def test_real_is_binary32():
    r = run_p("r : REAL := 0.1; l : LREAL := 0.1; big : REAL := 16777217.0; d : DINT := 16777217; big2 : REAL;",
              "big2 := DINT_TO_REAL(d);")
    assert r["P.r"] == 0.10000000149011612
    assert r["P.l"] == 0.1
    assert r["P.big"] == 16777216.0
    assert r["P.big2"] == 16777216.0


def test_real_rounded_on_every_store():
    r = run_p("r : REAL; i : INT;", "FOR i := 1 TO 10 DO r := r + 0.1; END_FOR;")
    x = 0.0
    for _ in range(10):
        x = f32(x + f32(0.1))
    assert r["P.r"] == x
    assert r["P.r"] != 1.0 or x == 1.0


def test_real_comparison_with_literal_is_binary32():
    r = run_p("r : REAL := 3.65; gt : BOOL; eq : BOOL; ge : BOOL;", "gt := r > 3.65; eq := r = 3.65; ge := r >= 3.65;")
    assert r["P.gt"] is False and r["P.eq"] is True and r["P.ge"] is True


def test_real_division():
    r = run_p("a : REAL := 1.0; b : REAL := 3.0; c : REAL; l : LREAL;", "c := a / b; l := 1.0 / 3.0;")
    assert r["P.c"] == f32(1.0 / 3.0)
    assert r["P.l"] == 1.0 / 3.0


def test_real_from_int_widening():
    r = run_p("i : INT := -7; r : REAL; l : LREAL; d : DINT := 123456789;", "r := i; l := d;")
    assert r["P.r"] == -7.0 and r["P.l"] == 123456789.0


# ---------------------------------------------------------------- bit access

def test_bit_access_read_and_write():
    r = run_p("w : WORD := 16#0008; b3 : BOOL; b2 : BOOL; d : DWORD; x : BYTE := 16#FF;", """
b3 := w.3;
b2 := w.2;
w.0 := TRUE;
w.15 := TRUE;
w.3 := FALSE;
d.31 := TRUE;
x.7 := FALSE;""")
    assert r["P.b3"] is True and r["P.b2"] is False
    assert r["P.w"] == 0x8001
    assert r["P.d"] == 0x80000000
    assert r["P.x"] == 0x7F


def test_bit_access_on_int():
    r = run_p("i : INT := 5; b : BOOL; c : BOOL;", "b := i.0; c := i.1;")
    assert r["P.b"] is True and r["P.c"] is False


# ---------------------------------------------------------------- runtime faults

def _where_line(where: str) -> int:
    m = re.fullmatch(r"t\.st:(\d+):(\d+)", where or "")
    assert m, f"fault location {where!r} is not t.st:LINE:COL"
    return int(m.group(1))


def test_division_by_zero_fault():
    src = """PROGRAM P
VAR a : INT := 10; b : INT; n : INT; q : INT; END_VAR
n := n + 1;
IF n = 3 THEN
  q := a / b;
END_IF;
END_PROGRAM
"""
    e = build(src)
    try:
        fault = e.run(10)
        assert fault is not None
        assert "division by zero" in fault.what
        assert _where_line(fault.where) == 5
        assert fault.scan == 3
        assert e.tag("P.n").get() == 3      # the task stopped at the fault
    finally:
        e.close()


def test_mod_by_zero_fault():
    src = """PROGRAM P
VAR a : DINT := 10; b : DINT; m : DINT; END_VAR
m := a MOD b;
END_PROGRAM
"""
    e = build(src)
    try:
        fault = e.run(2)
        assert fault is not None and "division by zero" in fault.what
        assert _where_line(fault.where) == 3 and fault.scan == 1
    finally:
        e.close()


def test_array_index_out_of_bounds_fault():
    src = """PROGRAM P
VAR a : ARRAY[1..3] OF INT; i : INT; x : INT; END_VAR
i := i + 1;
x := 0;
a[i] := i;
END_PROGRAM
"""
    e = build(src)
    try:
        fault = e.run(10)
        assert fault is not None
        assert "outside the array bounds" in fault.what
        assert _where_line(fault.where) == 5
        assert fault.scan == 4
    finally:
        e.close()


def test_array_index_below_bounds_read_fault():
    src = """PROGRAM P
VAR a : ARRAY[-2..2] OF INT; i : INT := -1; x : INT; END_VAR
i := i - 1;

x := a[i];
END_PROGRAM
"""
    e = build(src)
    try:
        fault = e.run(10)
        assert fault is not None and "outside the array bounds" in fault.what
        assert _where_line(fault.where) == 5 and fault.scan == 2
    finally:
        e.close()


def test_multidim_index_out_of_bounds_fault():
    src = """PROGRAM P
VAR a : ARRAY[1..2, 0..2] OF INT; j : INT := 2; END_VAR
j := j + 1;
a[1, j] := 5;
END_PROGRAM
"""
    e = build(src)
    try:
        fault = e.run(3)
        assert fault is not None and "outside the array bounds" in fault.what
        assert _where_line(fault.where) == 4 and fault.scan == 1
    finally:
        e.close()


def test_fault_inside_function_points_at_function_line():
    src = """FUNCTION Div : INT
VAR_INPUT a : INT; b : INT; END_VAR
Div := a / b;
END_FUNCTION
PROGRAM P
VAR x : INT; d : INT := 2; END_VAR
d := d - 1;
x := Div(4, d);
END_PROGRAM
"""
    e = build(src)
    try:
        fault = e.run(5)
        assert fault is not None and "division by zero" in fault.what
        assert _where_line(fault.where) == 3 and fault.scan == 2
    finally:
        e.close()


def test_watchdog_stops_endless_loop():
    src = """PROGRAM P
VAR x : DINT; END_VAR
WHILE TRUE DO
  x := x + 1;
END_WHILE;
END_PROGRAM
"""
    e = build(src, watchdog_s=0.2)
    try:
        fault = e.run(1)
        assert fault is not None
        assert "watchdog" in str(fault).lower()
        assert fault.scan == 1
    finally:
        e.close()


# ---------------------------------------------------------------- more combinations

def test_exit_and_continue_inside_case_inside_loop():
    r = run_p("i : INT; n : INT;",
              "FOR i := 1 TO 10 DO CASE i OF 3: CONTINUE; 5: EXIT; END_CASE; n := n + i; END_FOR;")
    assert r["P.n"] == 1 + 2 + 4
    assert r["P.i"] == 5


def test_continue_in_for_with_step():
    r = run_p("i : INT; s : INT;", "FOR i := 0 TO 10 BY 3 DO IF i = 6 THEN CONTINUE; END_IF; s := s + i; END_FOR;")
    assert r["P.s"] == 0 + 3 + 9 and r["P.i"] == 12


def test_return_inside_loop_in_function():
    src = """
FUNCTION FirstOver : INT
VAR_INPUT lim : INT; END_VAR
VAR i : INT; END_VAR
FirstOver := -1;
FOR i := 1 TO 100 DO
  IF i * i > lim THEN
    FirstOver := i;
    RETURN;
  END_IF;
END_FOR;
END_FUNCTION
PROGRAM P
VAR a : INT; b : INT; END_VAR
a := FirstOver(50);
b := FirstOver(20000);
END_PROGRAM
"""
    r = run(src)
    assert r["P.a"] == 8 and r["P.b"] == -1


def test_function_result_defaults_when_not_assigned():
    src = """
FUNCTION G : INT
VAR_INPUT a : INT; END_VAR
IF a > 100 THEN G := 1; END_IF;
END_FUNCTION
PROGRAM P
VAR z : INT := 5; END_VAR
z := G(5);
END_PROGRAM
"""
    assert run(src)["P.z"] == 0


def test_function_with_output():
    src = """
FUNCTION F : INT
VAR_INPUT a : INT; END_VAR
VAR_OUTPUT o : INT; END_VAR
o := a * 2;
F := a + 1;
END_FUNCTION
PROGRAM P
VAR x : INT; y : INT; END_VAR
x := F(a := 3, o => y);
END_PROGRAM
"""
    r = run(src)
    assert r["P.x"] == 4 and r["P.y"] == 6


def test_array_of_fb_instances():
    src = """
FUNCTION_BLOCK C VAR_OUTPUT n : INT; END_VAR n := n + 1; END_FUNCTION_BLOCK
PROGRAM P
VAR cs : ARRAY[1..3] OF C; i : INT; END_VAR
FOR i := 1 TO 3 DO cs[i](); END_FOR;
cs[2]();
END_PROGRAM
"""
    assert run(src, 2)["P.cs"] == [{"n": 2}, {"n": 4}, {"n": 2}]


def test_array_of_structs_initialiser():
    r = run_p("a : ARRAY[1..2] OF Point := [(x := 5), (x := 6, y := 7)];", "a[1].y := 9;", types=STRUCT_T)
    assert r["P.a"] == [{"x": 5, "y": 9}, {"x": 6, "y": 7}]


def test_array_of_arrays():
    # ARRAY OF ARRAY is its own type (distinct from a 2-D array): a[i][j], and a[i] is a row
    r = run_p("a : ARRAY[1..2] OF ARRAY[1..3] OF INT; row : ARRAY[1..3] OF INT := [7, 8, 9]; x : INT;",
              "a[2][3] := 5; x := a[2][3]; a[1] := row; row[1] := 0;")
    assert r["P.x"] == 5
    assert r["P.a"] == [[7, 8, 9], [0, 0, 5]]


def test_real_widened_to_lreal_keeps_binary32_value():
    r = run_p("r : REAL := 0.1; l : LREAL;", "l := r;")
    assert r["P.l"] == 0.10000000149011612


def test_time_scaled_by_integer():
    r = run_p("t : TIME := T#1s; u : TIME; v : TIME; w : TIME;", "u := t * 3; v := t / 4; w := u - T#5s;")
    assert r["P.u"] == 3000 and r["P.v"] == 250 and r["P.w"] == -2000


def test_literal_out_of_range_is_error():
    assert "E0030" in error_codes(prog("s : SINT;", "s := 200;"))
    assert "E0030" in error_codes(prog("u : USINT;", "u := -1;"))


def test_bool_literals_case_insensitive():
    r = run_p("f : BOOL := true; g : BOOL := False; h : BOOL;", "h := f AND NOT g;")
    assert r["P.h"] is True


def test_global_constant_usable_in_loop_bound():
    src = """
VAR_GLOBAL CONSTANT N : INT := 3; END_VAR
PROGRAM P
VAR_EXTERNAL CONSTANT N : INT; END_VAR
VAR i : INT; s : INT; END_VAR
FOR i := 1 TO N DO s := s + i; END_FOR;
END_PROGRAM
"""
    assert run(src)["P.s"] == 6


def test_task_stays_stopped_after_fault():
    src = """PROGRAM P
VAR a : INT := 10; b : INT; n : INT; q : INT; END_VAR
n := n + 1;
IF n = 2 THEN q := a / b; END_IF;
END_PROGRAM
"""
    e = build(src)
    try:
        faults = [e.scan(k * 10_000_000) for k in range(5)]
        assert [len(f) for f in faults] == [0, 1, 0, 0, 0]
        assert e.tag("P.n").get() == 2
    finally:
        e.close()


def test_comment_markers_inside_other_comments():
    src = """PROGRAM P
VAR x : INT; y : INT; END_VAR
(* a // inside a block comment does not hide its end *) x := 5;
// a (* inside a line comment opens nothing
y := 6;
END_PROGRAM
"""
    r = run(src)
    assert r["P.x"] == 5 and r["P.y"] == 6


def test_pragma_and_comment_characters_inside_strings():
    r = run_p("s : STRING; w : WSTRING;", "s := '{x} (* y'; w := \"(* {z} //\";")
    assert r["P.s"] == "{x} (* y" and r["P.w"] == "(* {z} //"


STRUCT_ARR_T = """
TYPE Buf : STRUCT a : ARRAY[1..3] OF INT := [1, 2, 3]; n : INT; END_STRUCT; END_TYPE
TYPE Pt2 : STRUCT x : INT; y : INT; END_STRUCT; END_TYPE
"""


def test_struct_with_array_member_copy_is_deep():
    r = run_p("s1 : Buf; s2 : Buf;", "s2 := s1; s2.a[1] := 99;", types=STRUCT_ARR_T)
    assert r["P.s1"] == {"a": [1, 2, 3], "n": 0}
    assert r["P.s2"] == {"a": [99, 2, 3], "n": 0}


def test_array_of_structs_copy_is_deep():
    r = run_p("a : ARRAY[1..2] OF Pt2; b : ARRAY[1..2] OF Pt2;", "b := a; b[1].x := 5;", types=STRUCT_ARR_T)
    assert r["P.a"] == [{"x": 0, "y": 0}, {"x": 0, "y": 0}]
    assert r["P.b"] == [{"x": 5, "y": 0}, {"x": 0, "y": 0}]


def test_fb_input_struct_with_array_kept_by_value():
    src = STRUCT_ARR_T + """
FUNCTION_BLOCK K
VAR_INPUT b : Buf; END_VAR
VAR_OUTPUT first : INT; END_VAR
first := b.a[1];
END_FUNCTION_BLOCK
PROGRAM P
VAR k : K; src : Buf; before : INT; after : INT; END_VAR
k(b := src);
before := k.first;
src.a[1] := 42;
k();
after := k.first;
END_PROGRAM
"""
    r = run(src)
    assert r["P.before"] == 1 and r["P.after"] == 1


def test_function_returning_struct():
    src = STRUCT_ARR_T + """
FUNCTION MkPt : Pt2
VAR_INPUT x : INT; y : INT; END_VAR
MkPt.x := x;
MkPt.y := y;
END_FUNCTION
PROGRAM P
VAR p : Pt2; END_VAR
p := MkPt(3, 4);
END_PROGRAM
"""
    assert run(src)["P.p"] == {"x": 3, "y": 4}


def test_function_local_array_reinitialised_each_call():
    src = """
FUNCTION Loc : INT
VAR a : ARRAY[1..2] OF INT := [5, 6]; END_VAR
a[1] := a[1] + 1;
Loc := a[1];
END_FUNCTION
PROGRAM P
VAR l : INT; END_VAR
l := Loc() + Loc();
END_PROGRAM
"""
    assert run(src, 2)["P.l"] == 12


def test_nested_fb_instances_keep_state():
    src = """
FUNCTION_BLOCK Inner VAR_OUTPUT n : INT; END_VAR n := n + 1; END_FUNCTION_BLOCK
FUNCTION_BLOCK Outer
VAR i : Inner; END_VAR
VAR_OUTPUT n : INT; q : BOOL; END_VAR
i();
n := i.n * 10;
q := n > 15;
END_FUNCTION_BLOCK
PROGRAM P
VAR o : Outer; nb : BOOL := TRUE; END_VAR
o(NOT q => nb);
END_PROGRAM
"""
    r = run(src, 2)
    assert r["P.o"] == {"i": {"n": 2}, "n": 20, "q": True}
    assert r["P.nb"] is False          # NOT q => nb stores the negated output


def test_var_in_out_struct_member():
    src = """
TYPE Pt2 : STRUCT x : INT; y : INT; END_STRUCT; END_TYPE
FUNCTION Inc : BOOL VAR_IN_OUT v : INT; END_VAR v := v + 1; Inc := TRUE; END_FUNCTION
PROGRAM P
VAR pp : Pt2; END_VAR
Inc(pp.y);
END_PROGRAM
"""
    assert run(src, 2)["P.pp"] == {"x": 0, "y": 2}


INC_FN = """
FUNCTION Inc : BOOL
VAR_IN_OUT v : INT; END_VAR
v := v + 1;
Inc := TRUE;
END_FUNCTION
"""


def test_function_with_in_out_in_if_condition():
    src = INC_FN + "PROGRAM P\nVAR cnt : INT; x : INT; END_VAR\nIF Inc(cnt) THEN x := 1; END_IF;\nEND_PROGRAM\n"
    r = run(src, 2)
    assert r["P.cnt"] == 2 and r["P.x"] == 1


def test_elsif_condition_only_evaluated_when_reached():
    src = INC_FN + """
PROGRAM P
VAR cnt : INT; x : INT; n : INT; END_VAR
n := n + 1;
IF n = 1 THEN
  x := 1;
ELSIF Inc(cnt) THEN
  x := 2;
END_IF;
END_PROGRAM
"""
    r = run(src, 3)
    assert r["P.cnt"] == 2 and r["P.x"] == 2


def test_function_with_in_out_in_while_condition():
    src = INC_FN + """
PROGRAM P
VAR cnt : INT; x : INT; END_VAR
WHILE Inc(cnt) AND cnt < 5 DO x := x + 1; END_WHILE;
END_PROGRAM
"""
    r = run(src)
    assert r["P.cnt"] == 5 and r["P.x"] == 4


def test_function_with_in_out_in_until_condition():
    src = INC_FN + """
PROGRAM P
VAR cnt : INT; x : INT; END_VAR
REPEAT x := x + 1; UNTIL Inc(cnt) AND cnt >= 3 END_REPEAT;
END_PROGRAM
"""
    r = run(src)
    assert r["P.cnt"] == 3 and r["P.x"] == 3


def test_bit_access_on_array_element_and_struct_member():
    src = """
TYPE R : STRUCT w : WORD; END_STRUCT; END_TYPE
PROGRAM P
VAR a : ARRAY[1..3] OF BYTE; s : R; b : BOOL; c : BOOL; END_VAR
a[2].3 := TRUE;
s.w.9 := TRUE;
b := a[2].3;
c := s.w.8;
END_PROGRAM
"""
    r = run(src)
    assert r["P.a"] == [0, 8, 0] and r["P.s"] == {"w": 512} and r["P.b"] is True and r["P.c"] is False


def test_bit_index_outside_width_is_error():
    assert "E0031" in error_codes(prog("b : BYTE; x : BOOL;", "x := b.8;"))


def test_case_constant_labels():
    src = """
PROGRAM P
VAR CONSTANT LIM : INT := 5; END_VAR
VAR x : INT := 5; y : INT; END_VAR
CASE x OF LIM: y := 1; ELSE y := 2; END_CASE;
END_PROGRAM
"""
    assert run(src)["P.y"] == 1


def test_case_overlapping_labels_is_error():
    assert "E0080" in error_codes(prog("n : INT; x : INT;", "CASE n OF 1..5: x := 1; 3: x := 2; END_CASE;"))


def test_real_literal_into_int_is_error():
    assert "E0021" in error_codes(prog("i : INT;", "i := 1.5;"))


def test_real_widened_in_comparison_with_lreal():
    r = run_p("r : REAL := 3.65; l : LREAL := 3.65; gt : BOOL; eq : BOOL; ll : LREAL := 0.1; leq : BOOL;",
              "gt := r > l; eq := r = l; leq := ll = 0.1;")
    # REAL 3.65 is 3.6500000953674316 once widened; LREAL 0.1 equals the binary64 literal
    assert r["P.gt"] is True and r["P.eq"] is False and r["P.leq"] is True


def test_real_operations_are_binary32():
    # REAL * REAL is a REAL (binary32) value, so a * b is rounded before + c
    a, b, c = 6.515929698944092, 7.887233734130859, -40.61404037475586
    assert (f32(a), f32(b), f32(c)) == (a, b, c)
    r = run_p(f"a : REAL := {a!r}; b : REAL := {b!r}; c : REAL := {c!r}; r1 : REAL; r2 : REAL;",
              "r1 := a * b + c; r2 := a * b; r2 := r2 + c;")
    expected = f32(f32(a * b) + c)
    assert r["P.r2"] == expected
    assert r["P.r1"] == expected


@pytest.mark.parametrize("loop", [
    "REPEAT x := x + 1; UNTIL FALSE END_REPEAT;",
    "FOR i := 1 TO 2000000000 DO x := x + 1; END_FOR;",
    "WHILE x >= 0 DO x := x + 1; IF x > 5 THEN x := 0; CONTINUE; END_IF; END_WHILE;",
])
def test_watchdog_stops_other_loops(loop):
    src = f"PROGRAM P\nVAR x : DINT; i : DINT; END_VAR\n{loop}\nEND_PROGRAM\n"
    e = build(src, watchdog_s=0.2)
    try:
        fault = e.run(1)
        assert fault is not None and "watchdog" in str(fault).lower()
    finally:
        e.close()


def test_watchdog_in_fb_loop_and_task_stops():
    src = """
FUNCTION_BLOCK Spin
VAR_OUTPUT n : DINT; END_VAR
WHILE TRUE DO n := n + 1; END_WHILE;
END_FUNCTION_BLOCK
PROGRAM P
VAR s : Spin; calls : INT; END_VAR
calls := calls + 1;
s();
END_PROGRAM
"""
    e = build(src, watchdog_s=0.2)
    try:
        fault = e.run(3)
        assert fault is not None and "watchdog" in str(fault).lower() and fault.scan == 1
        assert not e.scan(10_000_000)
        assert e.tag("P.calls").get() == 1
    finally:
        e.close()


# ---------------------------------------------------------------- wrapping at the operation's own type
# The type of INT + INT is INT: the result wraps at 16 bits even when it is
# then stored into, compared with or combined with something wider.

def test_int_sum_wraps_before_widening_store_and_compare():
    r = run_p("i : INT := 32767; d : DINT; b : BOOL := TRUE; e : DINT;", "d := i + 1; b := i + 1 > e;")
    assert r["P.d"] == -32768 and r["P.b"] is False


def test_int_negate_and_abs_wrap_before_widening():
    r = run_p("i : INT := -32768; d : DINT; a : DINT; s : SINT := -128; y : LREAL;",
              "d := -i; a := ABS(i); y := ABS(s) + 0.5;")
    assert r["P.d"] == -32768 and r["P.a"] == -32768      # -(-32768) and ABS(-32768) are INT: -32768
    assert r["P.y"] == -127.5                              # ABS(SINT#-128) = -128


def test_udint_product_wraps_before_ulint_store():
    r = run_p("u : UDINT := 4000000000; l : ULINT;", "l := u * 2;")
    assert r["P.l"] == 8000000000 - (1 << 32)


def test_int_sum_wraps_as_function_argument_and_output():
    extra = """
FUNCTION F : DINT
VAR_INPUT a : DINT; END_VAR
F := a;
END_FUNCTION
FUNCTION G : INT
VAR_INPUT a : INT; b : INT; t : INT; END_VAR
VAR_OUTPUT o : DINT; END_VAR
o := a + b + t;
G := 0;
END_FUNCTION
"""
    r = run_p("i : INT := 32767; d : DINT; o : DINT; x : INT;",
              "d := F(i + 1); x := G(a := 32767, b := 32767, t := 4, o => o);", extra=extra)
    assert r["P.d"] == -32768
    assert r["P.o"] == 2              # 32767 + 32767 + 4 = 65538, at 16 bits: 2


def test_int_sum_wraps_inside_min_max_and_real_operations():
    r = run_p("i : INT := 32767; d : DINT := 5; m : DINT; n : DINT; r : REAL; l : LREAL; big : LREAL := 1.0E9;",
              "m := MAX(i + 1, d); n := MIN(i + 1, d); r := 1.0 + (i + 1); l := MIN(i + 1, big);")
    assert r["P.m"] == 5 and r["P.n"] == -32768
    assert r["P.r"] == -32767.0
    assert r["P.l"] == -32768.0 and isinstance(r["P.l"], float)


def test_int_sum_wraps_in_mixed_width_arithmetic():
    r = run_p("i : INT := 32767; d : DINT := 10; x : DINT; y : DINT;",
              "x := (i + 1) + d; y := d - (i + 1) * 2;")
    assert r["P.x"] == -32768 + 10
    assert r["P.y"] == 10           # (i + 1) * 2 is INT: -32768 * 2 wraps to 0


def test_wrapped_results_as_operands_keep_precedence():
    r = run_p("i : INT := 3; a : INT; b : INT; c : SINT; d : DINT := 300; e : DINT; n : DINT;",
              "a := SHL(i, 1) * 2; b := (NOT i) * 2; c := DINT_TO_SINT(d) * 2; "
              "e := 1 - SHL(i, 1); n := -(NOT i);")
    assert r["P.a"] == 12 and r["P.b"] == -8 and r["P.c"] == 88     # DINT_TO_SINT(300) = 44
    assert r["P.e"] == -5 and r["P.n"] == 4


def test_int_sum_wraps_as_time_factor():
    r = run_p("i : INT := 32767; t : TIME := T#1ms;", "t := t * (i + 1);")
    assert r["P.t"] == -32768


def test_for_end_wraps_at_its_own_type():
    r = run_p("e : INT := 32767; d : DINT; n : DINT;", "FOR d := 0 TO e + 1 DO n := n + 1; END_FOR;")
    assert r["P.n"] == 0 and r["P.d"] == 0     # END is INT -32768: no trip, the variable keeps START


def test_trunc_result_is_dint():
    r = run_p("r : LREAL := 3.0E9; l : LINT;", "l := TRUNC(r);")
    assert r["P.l"] == 3000000000 - (1 << 32)


def test_time_times_real_literal_rounds():
    r = run_p("t : TIME := T#1ms; u : LTIME := LTIME#1ns; ok : BOOL;",
              "t := t * 1.5; u := u * 2.5; ok := u = LTIME#2ns;")
    assert r["P.t"] == 2 and isinstance(r["P.t"], int)      # round half to even
    assert r["P.ok"] is True


def test_selection_with_integer_argument_and_real_result_is_real():
    r = run_p("i : DINT := 3; r : LREAL := 10.0; a : LREAL; b : LREAL; c : LREAL; d : LREAL; e : LREAL; "
              "f : REAL; g : LREAL; j : INT := 3;",
              "a := MIN(i, r); b := MAX(r, i); c := LIMIT(i, i, r); d := SEL(FALSE, i, r); "
              "e := MUX(0, i, r); f := MIN(j, REAL#10.0); g := MIN(2, r);")
    for k in "abcdefg":
        assert isinstance(r[f"P.{k}"], float), k
    assert (r["P.a"], r["P.b"], r["P.c"], r["P.d"], r["P.e"], r["P.f"], r["P.g"]) == (3.0, 10.0, 3.0, 3.0, 3.0, 3.0, 2.0)


@pytest.mark.parametrize("types,decls,body,what", [
    ("TYPE R : DINT(0..100000); END_TYPE", "i : INT := 32767; r : R;", "r := i + 1;",
     "value -32768 is outside the subrange 0..100000"),
    ("TYPE S : SINT(0..127); END_TYPE", "x : S := 127;", "x := x + 1;",
     "value -128 is outside the subrange 0..127"),
])
def test_subrange_check_sees_wrapped_value(types, decls, body, what):
    e = build(prog(decls, body, types=types))
    try:
        fault = e.run(1)
        assert fault is not None and fault.what == what
    finally:
        e.close()


def test_widening_conversion_of_wrapped_sum_keeps_subrange_check():
    # INT_TO_DINT(i + 1) is -32768: below the subrange, a fault (not skipped by the interval analysis)
    e = build(prog("i : INT := 32767; r : R;", "r := INT_TO_DINT(i + 1);", types="TYPE R : DINT(-32767..40000); END_TYPE"))
    try:
        fault = e.run(1)
        assert fault is not None and fault.what == "value -32768 is outside the subrange -32767..40000"
    finally:
        e.close()
