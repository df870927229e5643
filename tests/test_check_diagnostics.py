"""Every diagnostic code of plc_lang/codes.py, triggered by a small ST source.

Each case names the code, the source and the line the diagnostic must be on;
some also name words the message must contain. The test passes when a
diagnostic with that code and severity is on that line.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plc_lang.codes import CODES
from plc_lang.driver import check_project, compile_project, read_sources
from plc_lang.source import SourceFile
from tests.stutil import diagnostics, error_codes, warning_codes

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SITE_PROTECT = Path("/work/shared/bench/site_protect.st")
BATTERY_GUARD = REPO / "programs" / "examples" / "battery_guard.st"


def prog(decls: str, body: str, name: str = "P") -> str:
    """A PROGRAM: line 1 PROGRAM, 2 VAR, 3 the declarations, 4 END_VAR, 5.. the body."""
    return f"PROGRAM {name}\nVAR\n{decls}\nEND_VAR\n{body}\nEND_PROGRAM\n"


def config(tasks_and_programs: str, pou: str = "") -> str:
    """A one-line PROGRAM P (lines 1-6 via prog) followed by a CONFIGURATION:
    line 7 CONFIGURATION, 8 RESOURCE, 9.. the given lines."""
    return (pou or prog("x : INT;", "x := x + 1;")) + \
        "CONFIGURATION C\nRESOURCE R ON PLC\n" + tasks_and_programs + "END_RESOURCE\nEND_CONFIGURATION\n"


SWAP_FB = """\
FUNCTION_BLOCK Swap
VAR_IN_OUT
  a : INT;
  b : INT;
END_VAR
VAR
  t : INT;
END_VAR
t := a;
a := b;
b := t;
END_FUNCTION_BLOCK
"""                                            # 12 lines

ENUM_M = "TYPE M : (IDLE, RUN, STOP); END_TYPE\n"   # one line; the PROGRAM starts on line 2

# (id, code, source, line (or lines it may be on), words the message must contain)
CASES = [
    # ---- E0001 syntax
    ("missing-END_IF", "E0001", "PROGRAM P\nVAR x : INT; y : INT; END_VAR\nIF x > 1 THEN\n  y := 2;\nEND_PROGRAM\n",
     5, ["expected END_IF to close the IF on line 3"]),
    ("missing-END_FOR", "E0001", "PROGRAM P\nVAR x : INT; i : INT; END_VAR\nFOR i := 1 TO 3 DO\n  x := i;\nEND_PROGRAM\n",
     5, ["expected END_FOR to close the FOR on line 3"]),
    ("missing-END_WHILE", "E0001", "PROGRAM P\nVAR x : INT; END_VAR\nWHILE x < 3 DO\n  x := x + 1;\nEND_PROGRAM\n",
     5, ["expected END_WHILE to close the WHILE on line 3"]),
    ("missing-END_CASE", "E0001", "PROGRAM P\nVAR x : INT; END_VAR\nCASE x OF\n  1: x := 2;\nEND_PROGRAM\n",
     5, ["expected END_CASE to close the CASE on line 3"]),
    ("missing-END_REPEAT", "E0001", "PROGRAM P\nVAR x : INT; END_VAR\nREPEAT\n  x := x + 1;\nEND_PROGRAM\n",
     5, ["REPEAT", "line 3"]),
    ("IF-inside-FOR-closed-by-END_FOR", "E0001",
     "PROGRAM P\nVAR x : INT; i : INT; END_VAR\nFOR i := 1 TO 3 DO\n  IF x > 1 THEN\n    x := i;\n  END_FOR;\nEND_PROGRAM\n",
     6, ["expected END_IF to close the IF on line 4"]),
    ("missing-END_PROGRAM-at-eof", "E0001", "PROGRAM P\nVAR x : INT; END_VAR\nx := 1;\n",
     3, ["expected END_PROGRAM to close the PROGRAM on line 1"]),
    ("missing-END_STRUCT", "E0001", "TYPE S : STRUCT a : INT;\nEND_TYPE\n",
     2, ["expected END_STRUCT to close the STRUCT on line 1"]),
    ("missing-semicolon-between-statements", "E0001", "PROGRAM P\nVAR x : INT; y : INT; END_VAR\nx := 1\ny := 2;\nEND_PROGRAM\n",
     3, ["expected ';'"]),
    ("missing-semicolon-before-END_IF", "E0001",
     "PROGRAM P\nVAR x : INT; END_VAR\nIF x > 1 THEN\n  x := 2\nEND_IF;\nEND_PROGRAM\n", 4, ["expected ';'"]),
    ("missing-semicolon-in-declaration", "E0001",
     "PROGRAM P\nVAR\n  x : INT\n  i : INT;\nEND_VAR\nx := i;\nEND_PROGRAM\n", 3, ["expected ';'", "'INT'"]),
    ("missing-THEN", "E0001", "PROGRAM P\nVAR x : INT; END_VAR\nIF x > 1\n  x := 2;\nEND_IF;\nEND_PROGRAM\n",
     (3, 4), ["THEN"]),
    ("unexpected-character", "E0001", prog("x : INT;", "x := 1 ? 2;"), 5, ["unexpected character '?'"]),
    ("stray-comment-close", "E0001", prog("x : INT;", "x := 1; *)"), 5, ["never opened"]),
    # ---- E0002 comments and pragmas
    ("nested-comment-left-open", "E0002", prog("x : INT;", "(* outer (* inner *) still open\nx := 1;"), 5, []),
    ("pragma-left-open", "E0002", prog("x : INT;", "{ attribute\nx := 1;"), 5, []),
    # ---- E0003 literals
    ("time-unit", "E0003", prog("t : TIME;", "t := T#5x;"), 5, ["5x"]),
    ("binary-digit", "E0003", prog("n : INT;", "n := 2#102;"), 5, ["2#102"]),
    ("octal-digit", "E0003", prog("n : INT;", "n := 8#9;"), 5, []),
    ("string-escape", "E0003", prog("s : STRING;", "s := 'a$Qb';"), 5, ["$Q"]),
    ("date-does-not-exist", "E0003", prog("d : DATE;", "d := D#2023-02-30;"), 5, []),
    ("time-of-day", "E0003", prog("t : TOD;", "t := TOD#25:00:00;"), 5, []),
    # ---- E0010 duplicates
    ("variable-case-insensitive", "E0010", prog("speed : REAL;\nSPEED : INT;", "speed := 1.0;"), 4, ["SPEED"]),
    ("pou", "E0010", "FUNCTION F : INT\nF := 1;\nEND_FUNCTION\nFUNCTION F : INT\nF := 2;\nEND_FUNCTION\n", 4, []),
    ("type", "E0010", "TYPE M : (A, B); END_TYPE\nTYPE M : (C, D); END_TYPE\n", 2, []),
    ("enum-value", "E0010", "TYPE M : (A, B, A); END_TYPE\n", 1, []),
    ("struct-field", "E0010", "TYPE S :\nSTRUCT\n  a : INT;\n  A : REAL;\nEND_STRUCT;\nEND_TYPE\n", 4, []),
    # ---- E0011 undeclared
    ("typo", "E0011", prog("tempMax : REAL;\ntMax : REAL;", "tMax := 1.0;\ntempMax := tMaxx;"), 7, ["tMaxx"]),
    ("unknown-function", "E0011", prog("x : INT;", "x := Frobnicate(1);"), 5, ["Frobnicate"]),
    ("undeclared-for-variable", "E0011", prog("x : INT;", "FOR j := 1 TO 3 DO x := x + 1; END_FOR;"), 5, []),
    # ---- E0012 unknown type
    ("unknown-type", "E0012", prog("t : TON_X;", ""), 3, ["TON_X"]),
    ("function-as-type", "E0012", "FUNCTION F : INT\nF := 1;\nEND_FUNCTION\n" + prog("v : F;", "v := 1;"), 6, []),
    # ---- E0013 not callable
    ("fb-call-in-expression", "E0013", prog("myTimer : TON;\nx : BOOL;", "x := myTimer(IN := TRUE);"), 6, []),
    ("calling-an-int", "E0013", prog("i : INT;", "i();"), 5, []),
    # ---- E0014 no such member
    ("struct-field", "E0014", "TYPE R : STRUCT vMax : REAL; END_STRUCT; END_TYPE\n" + prog("rack : R;\nv : REAL;", "v := rack.vmaxx;"),
     7, ["vmaxx"]),
    ("fb-member", "E0014", prog("t : TON;\nb : BOOL;", "t(IN := TRUE, PT := T#1s);\nb := t.QQ;"), 7, ["QQ"]),
    ("enum-value", "E0014", ENUM_M + prog("m : M;", "m := M#HALT;"), 6, ["HALT"]),
    # ---- E0020 type mismatch
    ("int-to-bool", "E0020", prog("b : BOOL;\ni : INT;", "b := i;"), 6, []),
    ("bool-to-int", "E0020", prog("b : BOOL;\ni : INT;", "i := b;"), 6, []),
    ("string-to-int", "E0020", prog("s : STRING;\ni : INT;", "i := s;"), 6, []),
    # ---- E0021 narrowing
    ("real-to-int", "E0021", prog("r : REAL;\ni : INT;", "i := r;"), 6, []),
    ("dint-to-int", "E0021", prog("d : DINT;\ni : INT;", "i := d;"), 6, []),
    ("lreal-to-real", "E0021", prog("l : LREAL;\nr : REAL;", "r := l;"), 6, []),
    # ---- E0022 operator
    ("arithmetic-on-bool", "E0022", prog("flag : BOOL;\nx : INT;", "x := flag + 1;"), 6, []),
    ("and-on-real", "E0022", prog("r : REAL;\nb : BOOL;", "b := r AND r;"), 6, []),
    ("string-compared-with-number", "E0022", prog("s : STRING;\nb : BOOL;", "b := s = 5;"), 6, []),
    # ---- E0023 condition
    ("if", "E0023", prog("count : INT;\ny : INT;", "IF count THEN y := 1; END_IF;"), 6, ["IF"]),
    ("elsif", "E0023", prog("count : INT;\nb : BOOL;", "IF b THEN count := 1; ELSIF count THEN count := 2; END_IF;"), 6, []),
    ("while", "E0023", prog("count : INT;", "WHILE count DO count := count - 1; END_WHILE;"), 5, ["WHILE"]),
    ("until", "E0023", prog("count : INT;", "REPEAT count := count + 1; UNTIL count END_REPEAT;"), 5, ["UNTIL"]),
    # ---- E0030 literal out of range
    ("sint", "E0030", prog("s : SINT;", "s := 200;"), 5, ["200"]),
    ("usint-negative", "E0030", prog("u : USINT;", "u := -1;"), 5, []),
    ("int", "E0030", prog("i : INT;", "i := 40000;"), 5, []),
    ("initial-value", "E0030", prog("s : SINT := 128;", "s := s + 1;"), 3, []),
    # ---- E0031 constant index
    ("below-low-bound", "E0031", prog("a : ARRAY[1..8] OF REAL;", "a[0] := 1.0;"), 5, []),
    ("above-high-bound", "E0031", prog("a : ARRAY[1..8] OF REAL;\nr : REAL;", "r := a[9];"), 6, []),
    ("second-dimension", "E0031", prog("a : ARRAY[1..2, 1..3] OF INT;", "a[1, 4] := 1;"), 5, []),
    # ---- E0032 bounds
    ("low-above-high", "E0032", prog("a : ARRAY[10..1] OF INT;", "a[1] := 1;"), 3, []),
    ("too-many-elements", "E0032", prog("a : ARRAY[1..100000000] OF INT;", "a[1] := 1;"), 3, []),
    ("string-length", "E0032", prog("s : STRING[70000];", "s := 'a';"), 3, []),
    # ---- E0033 not constant
    ("case-label-variable", "E0033", prog("x : INT;\ny : INT;\nz : INT;", "CASE x OF y: z := 1; END_CASE;"), 7, []),
    ("initial-value-variable", "E0033", prog("x : INT;\ny : INT := x;", "x := y;"), 4, []),
    ("array-bound-variable", "E0033", prog("n : INT;\na : ARRAY[1..n] OF INT;", "a[1] := n;"), 4, []),
    # ---- E0040 assignment to a constant
    ("var-constant", "E0040",
     "PROGRAM P\nVAR CONSTANT\n  limit : REAL := 3.65;\nEND_VAR\nVAR\n  r : REAL;\nEND_VAR\nlimit := 3.7;\nr := limit;\nEND_PROGRAM\n",
     8, ["limit"]),
    ("enum-value", "E0040", ENUM_M + prog("m : M;", "IDLE := m;"), 6, []),
    # ---- E0041 assignment to an input
    ("fb-writes-its-input", "E0041", "FUNCTION_BLOCK F\nVAR_INPUT\n  x : INT;\nEND_VAR\nx := x + 1;\nEND_FUNCTION_BLOCK\n",
     5, []),
    ("function-writes-its-input", "E0041",
     "FUNCTION G : INT\nVAR_INPUT\n  x : INT;\nEND_VAR\nx := 2;\nG := x;\nEND_FUNCTION\n", 5, []),
    # ---- E0042 FB output from outside
    ("timer-Q", "E0042", prog("myTimer : TON;", "myTimer(IN := TRUE, PT := T#1s);\nmyTimer.Q := FALSE;"), 6, []),
    ("user-fb-output", "E0042",
     "FUNCTION_BLOCK B\nVAR_OUTPUT\n  o : INT;\nEND_VAR\no := 1;\nEND_FUNCTION_BLOCK\n"
     + prog("b : B;\ny : INT;", "b();\nb.o := 2;\ny := b.o;"), 13, []),
    # ---- E0043 FOR variable
    ("assigned-in-body", "E0043", prog("i : INT;", "FOR i := 1 TO 10 DO\n  i := i + 1;\nEND_FOR;"), 6, []),
    ("nested-loop-reuses-it", "E0043", prog("i : INT;\nx : INT;", "FOR i := 1 TO 3 DO\n  FOR i := 1 TO 2 DO x := i; END_FOR;\nEND_FOR;"),
     7, []),
    # ---- E0050 wrong arguments
    ("too-few", "E0050", prog("x : INT;\ny : INT;", "x := LIMIT(0, y);"), 6, []),
    ("missing-in-out", "E0050", SWAP_FB + prog("s : Swap;\nx : INT;", "s(a := x);"), 18, ["b"]),
    ("mixed-formal-and-positional", "E0050", prog("x : INT;\ny : INT;", "x := LIMIT(MN := 0, y, 100);"), 6, []),
    ("too-many", "E0050", "FUNCTION Twice : INT\nVAR_INPUT\n  v : INT;\nEND_VAR\nTwice := v * 2;\nEND_FUNCTION\n"
     + prog("x : INT;", "x := Twice(1, 2);"), 11, []),
    # ---- E0051 unknown parameter
    ("unknown-input", "E0051", prog("t : TON;\ngo : BOOL;", "t(IN := go, TIME := T#5s);"), 6, ["TIME"]),
    ("arrow-on-an-input", "E0051", prog("t : TON;\ngo : BOOL;\nq : BOOL;", "t(IN := go, PT := T#1s, IN => q);\ngo := q;"),
     7, []),
    # ---- E0052 VAR_IN_OUT needs a variable
    ("expression", "E0052", SWAP_FB + prog("s : Swap;\nx : INT;\ny : INT;", "s(a := x + 1, b := y);"), 19, []),
    ("constant", "E0052",
     "FUNCTION Inc : INT\nVAR_IN_OUT\n  v : INT;\nEND_VAR\nv := v + 1;\nInc := v;\nEND_FUNCTION\n"
     + prog("x : INT;", "x := Inc(5);"), 12, []),
    # ---- E0053 quality of something that is not a variable
    ("io-of-expression", "E0053", prog("t : REAL;\nok : BOOL;", "ok := IO_OK(t + 1.0);"), 6, ["IO_OK"]),
    ("io-of-fb", "E0053", prog("tm : TON;\nq : INT;", "q := IO_QUALITY(tm);"), 6, ["function block"]),
    # ---- E0060 recursion
    ("function-calls-itself", "E0060", "FUNCTION F : INT\nVAR_INPUT n : INT; END_VAR\nF := F(n);\nEND_FUNCTION\n", 1, []),
    ("two-functions", "E0060",
     "FUNCTION F : INT\nVAR_INPUT n : INT; END_VAR\nF := G(n);\nEND_FUNCTION\n"
     "FUNCTION G : INT\nVAR_INPUT n : INT; END_VAR\nG := F(n);\nEND_FUNCTION\n", 1, []),
    ("two-functions-and-a-caller", "E0060",
     "FUNCTION F : INT\nVAR_INPUT n : INT; END_VAR\nF := G(n);\nEND_FUNCTION\n"
     "FUNCTION G : INT\nVAR_INPUT n : INT; END_VAR\nG := F(n);\nEND_FUNCTION\n"
     + prog("x : INT;", "x := F(1);"), 1, []),
    ("self-recursive-function-and-a-caller", "E0060",
     "FUNCTION F : INT\nVAR_INPUT n : INT; END_VAR\nF := F(n);\nEND_FUNCTION\n" + prog("x : INT;", "x := F(1);"), 1, []),
    ("fbs-containing-each-other", "E0060",
     "FUNCTION_BLOCK A1\nVAR b : B1; END_VAR\nb();\nEND_FUNCTION_BLOCK\nFUNCTION_BLOCK B1\nVAR a : A1; END_VAR\na();\nEND_FUNCTION_BLOCK\n",
     1, []),
    # ---- E0070 configuration
    ("unknown-task", "E0070", config("TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);\nPROGRAM Main WITH Fsat : P;\n"), 10, ["Fsat"]),
    ("unknown-program", "E0070", config("TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);\nPROGRAM Main WITH Fast : Nope;\n"), 10, ["Nope"]),
    ("priority", "E0070", config("TASK Fast(INTERVAL := T#10ms, PRIORITY := 40);\nPROGRAM Main WITH Fast : P;\n"), 9, []),
    ("instances-share-a-name", "E0070",
     config("TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);\nPROGRAM Main WITH Fast : P;\nPROGRAM Main WITH Fast : P;\n"), 11, []),
    ("task-without-interval", "E0070", config("TASK Fast(PRIORITY := 1);\nPROGRAM Main WITH Fast : P;\n"), 9, []),
    ("zero-interval", "E0070", config("TASK Fast(INTERVAL := T#0ms, PRIORITY := 1);\nPROGRAM Main WITH Fast : P;\n"), 9, []),
    ("instance-of-an-fb", "E0070",
     config("TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);\nPROGRAM Main WITH Fast : B;\n",
            prog("x : INT;", "x := x + 1;") + "FUNCTION_BLOCK B\nEND_FUNCTION_BLOCK\n"), 12, []),
    # ---- E0080 CASE labels
    ("overlapping-ranges", "E0080", prog("n : INT;\na : INT;", "CASE n OF 1..5: a := 1; 3: a := 2; END_CASE;"), 6, []),
    ("same-label-twice", "E0080", prog("n : INT;\na : INT;", "CASE n OF\n1: a := 1;\n1: a := 2;\nEND_CASE;"), 8, []),
    ("enum-label-on-int", "E0080", ENUM_M + prog("n : INT;\na : INT;", "CASE n OF IDLE: a := 1; END_CASE;"), 7, []),
    ("real-selector", "E0080", prog("r : REAL;\na : INT;", "CASE r OF 1: a := 1; END_CASE;"), 6, []),
    # ---- E0090 EXIT / CONTINUE
    ("exit", "E0090", prog("x : INT;", "x := 1;\nEXIT;"), 6, ["EXIT"]),
    ("continue", "E0090", prog("x : INT;", "x := 1;\nCONTINUE;"), 6, ["CONTINUE"]),
    ("exit-in-if-outside-loop", "E0090", prog("x : INT;", "IF x > 0 THEN\n  EXIT;\nEND_IF;"), 6, []),
    # ---- E0091 unsupported
    ("event-task", "E0091", config("TASK E(SINGLE := TRUE, PRIORITY := 1);\nPROGRAM Main WITH E : P;\n"), 9, []),
    ("program-instance-arguments", "E0091",
     config("TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);\nPROGRAM Main WITH Fast : P(x := 1);\n"), 10, []),
    # ---- E0093 test functions outside a test
    ("assert-in-production", "E0093", prog("x : INT;", "x := 1;\nASSERT_EQ(1, x);"), 6, ["ASSERT_EQ"]),
    ("advance-in-production", "E0093", prog("x : INT;", "x := 1;\nADVANCE(T#1s);"), 6, ["ADVANCE"]),
    ("assert-as-a-value", "E0093", prog("x : INT;", "x := 1;\nx := ASSERT_TRUE(x > 0);", name="TEST_P"), 6, ["statement"]),
    # ---- E0094 invalid test
    ("test-with-input", "E0094", "FUNCTION_BLOCK TEST_B\nVAR_INPUT v : REAL; END_VAR\nASSERT_TRUE(v > 0.0);\nEND_FUNCTION_BLOCK\n",
     2, ["VAR_INPUT"]),
    ("bad-scan-pragma", "E0094", "{attribute 'scan' := 'fast'}\n" + prog("x : INT;", "x := 1;\nADVANCE_SCANS(1);", name="TEST_P"),
     2, ["scan"]),
    # ---- E0095 production code holding a test
    ("instance-of-a-test", "E0095", "{attribute 'test'}\nFUNCTION_BLOCK Check\nASSERT_TRUE(TRUE);\nEND_FUNCTION_BLOCK\n"
     + prog("c : Check;", "c();"), 7, ["Check"]),
    ("test-in-configuration", "E0095",
     config("TASK Fast(INTERVAL := T#10ms, PRIORITY := 1);\nPROGRAM Main WITH Fast : TEST_P;\n",
            prog("x : INT;", "x := 1;", name="TEST_P")), 10, ["gridplc test"]),
    # ---- W0101 unused
    ("unused-local", "W0101", prog("x : INT;\nunused : INT;", "x := 1;"), 4, ["unused"]),
    # ---- W0102 read before written
    ("function-local", "W0102", "FUNCTION F : INT\nVAR\n  tmp : INT;\nEND_VAR\nF := tmp;\nEND_FUNCTION\n", 5, ["tmp"]),
    ("var-temp", "W0102", "PROGRAM P\nVAR\n  x : INT;\nEND_VAR\nVAR_TEMP\n  t : INT;\nEND_VAR\nx := t;\nEND_PROGRAM\n", 8, ["t"]),
    # ---- W0103 unbounded loop
    ("while", "W0103", prog("done : BOOL;\ncount : INT;", "WHILE NOT done DO count := count + 1; END_WHILE;"), 6, []),
    ("repeat", "W0103", prog("done : BOOL;\ncount : INT;", "REPEAT count := count + 1; UNTIL done END_REPEAT;"), 6, []),
    # ---- W0104 unreachable
    ("after-return", "W0104", "FUNCTION F : INT\nF := 1;\nRETURN;\nF := 2;\nEND_FUNCTION\n", 4, []),
    ("after-exit", "W0104", prog("i : INT;\nx : INT;", "FOR i := 1 TO 3 DO\n  EXIT;\n  x := i;\nEND_FOR;"), 8, []),
    ("after-continue", "W0104", prog("i : INT;\nx : INT;", "FOR i := 1 TO 3 DO\n  CONTINUE;\n  x := i;\nEND_FOR;"), 8, []),
    # ---- W0105 CASE on an enum
    ("missing-value", "W0105", ENUM_M + prog("m : M;\nx : INT;", "CASE m OF\n  IDLE: x := 1;\n  RUN: x := 2;\nEND_CASE;"),
     7, ["STOP"]),
]


def _find(diags, code, line):
    lines = line if isinstance(line, tuple) else (line,)
    return [d for d in diags if d.code == code and d.span.line in lines]


def _listing(diags) -> str:
    return "\n".join(f"  {d.span.line}:{d.span.col} {d.severity}[{d.code}] {d.message}" for d in diags) or "  (none)"


@pytest.mark.parametrize("code, src, line, words", [c[1:] for c in CASES], ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_code_is_reported(code, src, line, words):
    diags = diagnostics(src)
    hits = _find(diags, code, line)
    assert hits, f"expected {code} on line {line}; got:\n{_listing(diags)}\n--- source\n{src}"
    severity = "warning" if code.startswith("W") else "error"
    assert all(d.severity == severity for d in hits)
    for w in words:
        assert any(w in d.message for d in hits), f"{code} message should contain {w!r}:\n{_listing(hits)}"


def test_every_code_has_a_case():
    covered = {c[1] for c in CASES} | {"E0092"}        # E0092: see test_e0092_* below (it needs `sim`)
    assert covered == set(CODES), set(CODES) ^ covered


# ---------------------------------------------------------------- negative cases

@pytest.mark.parametrize("src, code", [
    ("FUNCTION_BLOCK B\nVAR_INPUT i : INT; END_VAR\nVAR_OUTPUT o : INT; END_VAR\nVAR_IN_OUT io : INT; END_VAR\n"
     "END_FUNCTION_BLOCK\n", "W0101"),
    ("FUNCTION F : INT\nVAR tmp : INT := 3; END_VAR\nF := tmp;\nEND_FUNCTION\n", "W0102"),
    ("FUNCTION F : INT\nVAR tmp : INT; END_VAR\ntmp := 3;\nF := tmp;\nEND_FUNCTION\n", "W0102"),
    (prog("done : BOOL;\ncount : INT;", "WHILE NOT done DO count := count + 1; done := count > 5; END_WHILE;"), "W0103"),
    (ENUM_M + prog("m : M;\nx : INT;", "CASE m OF IDLE: x := 1; ELSE x := 2; END_CASE;"), "W0105"),
    (ENUM_M + prog("m : M;\nx : INT;", "CASE m OF IDLE: x := 1; RUN, STOP: x := 2; END_CASE;"), "W0105"),
], ids=["interface-is-never-unused", "initialised-local", "written-first", "loop-changes-its-condition",
        "case-with-else", "case-covers-all"])
def test_warning_is_not_reported_when_it_does_not_apply(src, code):
    assert code not in warning_codes(src), _listing(diagnostics(src))


def test_widening_is_implicit():
    src = prog("i : INT;\nd : DINT;\nr : REAL;\nl : LREAL;", "d := i;\nr := i;\nl := r;\nl := d;\ni := i + 1;")
    assert error_codes(src) == []


def test_constant_array_bound_is_accepted():
    src = "PROGRAM P\nVAR CONSTANT\n  n : INT := 4;\nEND_VAR\nVAR\n  a : ARRAY[1..n] OF INT;\nEND_VAR\na[1] := n;\nEND_PROGRAM\n"
    assert diagnostics(src) == []


# ---------------------------------------------------------------- E0092 (needs sim)

def _sim(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime.cli", "sim", str(path), "--cycles", "1",
                           "--interval", "10ms", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_e0092_files_with_no_program(tmp_path):
    p = tmp_path / "library.st"
    p.write_text("FUNCTION Twice : INT\nVAR_INPUT x : INT; END_VAR\nTwice := x * 2;\nEND_FUNCTION\n"
                 "FUNCTION_BLOCK Acc\nVAR_INPUT x : INT; END_VAR\nVAR_OUTPUT total : INT; END_VAR\n"
                 "total := total + x;\nEND_FUNCTION_BLOCK\n")
    # a library checks clean...
    assert check_project(read_sources([str(p)])).diagnostics == []
    # ...but has nothing to run: the page of E0092
    cp = _sim(p)
    assert "Traceback" not in cp.stderr
    assert cp.returncode in (1, 2), cp
    assert "E0092" in cp.stderr + cp.stdout, cp


def test_e0092_program_option_names_a_function(tmp_path):
    p = tmp_path / "fn.st"
    p.write_text("FUNCTION Twice : INT\nVAR_INPUT x : INT; END_VAR\nTwice := x * 2;\nEND_FUNCTION\n"
                 + prog("y : INT;", "y := Twice(y + 1);"))
    cp = _sim(p, "--program", "Twice")
    assert "Traceback" not in cp.stderr
    assert cp.returncode in (1, 2), cp
    assert "E0092" in cp.stderr + cp.stdout, cp


# ---------------------------------------------------------------- E0001: the message

def test_syntax_error_span_points_at_the_statement_missing_its_semicolon():
    d = [x for x in diagnostics("PROGRAM P\nVAR x : INT; y : INT; END_VAR\nx := 1\ny := 2;\nEND_PROGRAM\n")
         if x.code == "E0001"]
    assert d and (d[0].span.line, d[0].span.col) == (3, 7), _listing(d)   # just after `x := 1`
    assert d[0].message.startswith("expected ';'")


def test_syntax_errors_in_separate_pous_are_all_reported():
    src = ("PROGRAM A\nVAR x : INT; END_VAR\nx := 1\nx := 2;\nEND_PROGRAM\n\n"
           "FUNCTION_BLOCK B\nVAR y : INT; END_VAR\nWHILE y < 3 DO\n  y := y + 1;\nEND_FUNCTION_BLOCK\n")
    d = [x for x in diagnostics(src) if x.code == "E0001"]
    assert any(x.span.line == 3 and "expected ';'" in x.message for x in d), _listing(d)
    assert any("expected END_WHILE to close the WHILE on line 9" in x.message for x in d), _listing(d)


def test_syntax_error_in_one_file_does_not_hide_errors_in_another():
    r = check_project([SourceFile("a.st", "PROGRAM A\nVAR x : INT; END_VAR\nx := 1\nEND_PROGRAM\n"),
                       SourceFile("b.st", prog("b : BOOL;", "b := 1;", name="B"))])
    got = {(d.span.file, d.code) for d in r.diagnostics}
    assert ("a.st", "E0001") in got and ("b.st", "E0020") in got, _listing(r.diagnostics)


# ---------------------------------------------------------------- whole files

def test_several_independent_semantic_errors_are_all_reported():
    r = check_project(read_sources([str(FIXTURES / "several_errors.st")]))
    got = sorted((d.span.line, d.code) for d in r.diagnostics if d.is_error)
    assert got == [(9, "E0020"), (10, "E0041"), (21, "E0030"), (22, "E0011"), (23, "E0023")], _listing(r.diagnostics)


def test_errors_in_several_pous_of_one_source_are_all_reported():
    src = ("PROGRAM A\nVAR x : INT; b : BOOL; END_VAR\nx := TRUE;\nb := 1;\nEND_PROGRAM\n"
           "PROGRAM B\nVAR y : SINT; END_VAR\ny := 300;\ny := zz;\nEND_PROGRAM\n"
           "FUNCTION_BLOCK C\nVAR_INPUT i : INT; END_VAR\ni := 1;\nEXIT;\nEND_FUNCTION_BLOCK\n")
    got = sorted((d.span.line, d.code) for d in diagnostics(src) if d.is_error)
    assert got == [(3, "E0020"), (4, "E0020"), (8, "E0030"), (9, "E0011"), (13, "E0041"), (14, "E0090")], got


def test_checking_is_repeatable_in_one_process():
    # check_project is a function of its sources: the same project checked
    # again (after other files were parsed) gives the same diagnostics
    lib = SourceFile("lib.st", "TYPE Mode : (IDLE, RUN); END_TYPE\n"
                     "FUNCTION Twice : INT\nVAR_INPUT x : INT; END_VAR\nTwice := x * 2;\nEND_FUNCTION\n")
    main = SourceFile("main.st", "PROGRAM M\nVAR m : Mode := RUN; y : INT; END_VAR\ny := Twice(y + 1);\nEND_PROGRAM\n")
    seen = []
    for _ in range(4):
        r = check_project([main, lib])
        seen.append([(d.span.file, d.span.line, d.code) for d in r.diagnostics])
        diagnostics(prog("x : INT;", "x := 1;"))            # parse something else in between
    assert all(s == seen[0] for s in seen), seen
    assert not any(code.startswith("E") for _f, _l, code in seen[0]), seen[0]


def test_correct_program_has_no_diagnostics():
    r = check_project(read_sources([str(FIXTURES / "clean.st")]))
    assert r.diagnostics == [], _listing(r.diagnostics)
    assert compile_project(read_sources([str(FIXTURES / "clean.st")])).program is not None


@pytest.mark.parametrize("path", [SITE_PROTECT, BATTERY_GUARD], ids=["site_protect", "battery_guard"])
def test_reference_programs_check_without_errors(path):
    r = check_project(read_sources([str(path)]))
    errors = [d for d in r.diagnostics if d.is_error]
    assert errors == [], _listing(errors)
    assert compile_project(read_sources([str(path)])).program is not None


def test_diagnostics_come_in_source_order():
    r = check_project(read_sources([str(FIXTURES / "several_errors.st")]))
    keys = [(d.span.line, d.span.col) for d in r.diagnostics]
    assert keys == sorted(keys)


def test_every_reported_code_is_documented():
    for _id, _code, src, _line, _words in CASES:
        for d in diagnostics(src):
            assert d.code in CODES, d
            assert d.severity == ("warning" if d.code.startswith("W") else "error"), d


def test_every_recursion_cycle_is_reported():
    src = ("FUNCTION F : INT\nVAR_INPUT n : INT; END_VAR\nF := G(n);\nEND_FUNCTION\n"
           "FUNCTION G : INT\nVAR_INPUT n : INT; END_VAR\nG := F(n);\nEND_FUNCTION\n"
           "FUNCTION H : INT\nVAR_INPUT n : INT; END_VAR\nH := H(n);\nEND_FUNCTION\n"
           + prog("x : INT;", "x := F(1) + H(1);"))
    d = [x for x in diagnostics(src) if x.code == "E0060"]
    assert len(d) == 2, _listing(d)                    # F -> G -> F, and H -> H
    assert any("H" in x.message and "F" not in x.message for x in d), _listing(d)


@pytest.mark.parametrize("src", [
    prog("x : DINT;", "x := 1" + " + 1" * 1000 + ";"),
    prog("x : INT;", "x := " + "(" * 2000 + "1" + ")" * 2000 + ";"),
    prog("b : BOOL;", "b := " + "NOT " * 2000 + "TRUE;"),
], ids=["1000-term-sum", "2000-parentheses", "2000-NOTs"])
def test_long_expressions_are_checked_without_raising(src):
    diags = check_project([SourceFile("long.st", src)]).diagnostics     # must not raise
    assert all(d.code in CODES for d in diags)
    r = compile_project([SourceFile("long.st", src)])
    assert r.program is not None or any(d.is_error for d in r.diagnostics)


def test_deeply_nested_statements_compile_or_are_diagnosed():
    # 120 nested IFs are valid ST; the compiler must either compile them or say
    # what its limit is, never raise.
    n = 120
    src = prog("x : INT;", "IF x = 0 THEN\n" * n + "x := 1;\n" + "END_IF;\n" * n)
    r = compile_project([SourceFile("deep.st", src)])
    assert r.program is not None or any(d.is_error for d in r.diagnostics)
