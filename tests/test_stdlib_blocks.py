"""Standard function blocks (timers, edges, bistables, counters) with exact
scan-level timing, and the standard functions. Expected values come from
IEC 61131-3 / CODESYS behaviour."""
from __future__ import annotations

import math
import struct

import pytest

from tests.stutil import build, error_codes, run

MS = 1_000_000


def f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


class Driver:
    """Drive inputs of program P per scan and record outputs."""

    def __init__(self, src: str, interval_ms: int = 10):
        self.e = build(src)
        self.interval = interval_ms
        self.k = 0

    def step(self, **inputs):
        for name, v in inputs.items():
            self.e.tag(f"P.{name}").set(v)
        faults = self.e.scan(self.k * self.interval * MS)
        assert not faults, faults
        self.k += 1
        return self

    def get(self, name):
        return self.e.tag(f"P.{name}").get()

    def close(self):
        self.e.close()


def seq(src: str, inputs: list[dict], outputs: tuple[str, ...], interval_ms: int = 10):
    d = Driver(src, interval_ms)
    try:
        rows = []
        for inp in inputs:
            d.step(**inp)
            rows.append(tuple(d.get(o) for o in outputs))
        return rows
    finally:
        d.close()


def timer_prog(kind: str) -> str:
    return f"""
PROGRAM P
VAR inp : BOOL; pt : TIME := T#30ms; t : {kind}; q : BOOL; et : TIME; END_VAR
t(IN := inp, PT := pt);
q := t.Q;
et := t.ET;
END_PROGRAM
"""


# ---------------------------------------------------------------- TON

def test_ton_exact_timing():
    rows = seq(timer_prog("TON"), [{"inp": True}] * 6, ("q", "et"))
    # t = 0, 10, 20, 30, 40, 50 ms; Q at t = 30 (scan 4); ET saturates at PT
    assert rows == [(False, 0), (False, 10), (False, 20), (True, 30), (True, 30), (True, 30)]


def test_ton_in_false_resets_and_restarts():
    ins = [True, True, False, True, True, True, True, False]
    rows = seq(timer_prog("TON"), [{"inp": v} for v in ins], ("q", "et"))
    assert rows == [(False, 0), (False, 10), (False, 0), (False, 0), (False, 10), (False, 20),
                    (True, 30), (False, 0)]


def test_ton_in_false_from_start():
    rows = seq(timer_prog("TON"), [{"inp": False}] * 3, ("q", "et"))
    assert rows == [(False, 0)] * 3


def test_ton_pt_changed_while_running_is_reread():
    ins = [{"inp": True, "pt": 50}, {"inp": True}, {"inp": True, "pt": 20}, {"inp": True}]
    rows = seq(timer_prog("TON"), ins, ("q", "et"))
    assert rows == [(False, 0), (False, 10), (True, 20), (True, 20)]


def test_ton_pt_raised_after_done_releases_q():
    ins = [{"inp": True, "pt": 10}, {"inp": True}, {"inp": True, "pt": 100}, {"inp": True}]
    rows = seq(timer_prog("TON"), ins, ("q", "et"))
    assert rows == [(False, 0), (True, 10), (False, 20), (False, 30)]


def test_ton_zero_pt():
    rows = seq(timer_prog("TON"), [{"inp": True, "pt": 0}, {"inp": True}], ("q", "et"))
    assert rows == [(True, 0), (True, 0)]


def test_ton_irregular_scan_times():
    d = Driver(timer_prog("TON"))
    try:
        d.e.tag("P.inp").set(True)
        out = []
        for t in (0, 7, 29, 31, 40):
            assert not d.e.scan(t * MS, due=d.e.tasks)     # force the task off the 10 ms grid
            out.append((d.get("q"), d.get("et")))
        assert out == [(False, 0), (False, 7), (False, 29), (True, 30), (True, 30)]
    finally:
        d.close()


def test_ton_formal_output_arrows():
    src = """
PROGRAM P
VAR t : TON; q : BOOL; et : TIME; END_VAR
t(IN := TRUE, PT := T#20ms, Q => q, ET => et);
END_PROGRAM
"""
    r = run(src, 3)
    assert r["P.q"] is True and r["P.et"] == 20


def test_ton_in_fb_with_many_scans():
    src = """
PROGRAM P
VAR t : TON; n : INT; firstQ : INT; END_VAR
n := n + 1;
t(IN := TRUE, PT := T#1s);
IF t.Q AND firstQ = 0 THEN firstQ := n; END_IF;
END_PROGRAM
"""
    r = run(src, 150)
    # Q at t = 1000 ms, which is scan 101 (t = 0 is scan 1)
    assert r["P.firstQ"] == 101


# ---------------------------------------------------------------- TOF

def test_tof_exact_timing():
    ins = [True, True, False, False, False, False, False]
    rows = seq(timer_prog("TOF"), [{"inp": v} for v in ins], ("q", "et"))
    # IN falls at t = 20; Q falls PT later at t = 50 (scan 6)
    assert rows == [(True, 0), (True, 0), (True, 0), (True, 10), (True, 20), (False, 30), (False, 30)]


def test_tof_in_false_from_start_never_pulses():
    rows = seq(timer_prog("TOF"), [{"inp": False}] * 3, ("q", "et"))
    assert rows == [(False, 0)] * 3


def test_tof_in_returns_during_delay():
    ins = [True, False, False, True, False, False, False, False]
    rows = seq(timer_prog("TOF"), [{"inp": v} for v in ins], ("q", "et"))
    assert rows == [(True, 0), (True, 0), (True, 10), (True, 0), (True, 0), (True, 10), (True, 20),
                    (False, 30)]


def test_tof_restart_after_done():
    ins = [True, False, False, False, False, True]
    rows = seq(timer_prog("TOF"), [{"inp": v} for v in ins], ("q", "et"))
    assert rows[4] == (False, 30)
    assert rows[5] == (True, 0)


def test_tof_pt_changed_while_running_is_reread():
    ins = [{"inp": True}, {"inp": False, "pt": 100}, {"inp": False}, {"inp": False, "pt": 20},
           {"inp": False}]
    rows = seq(timer_prog("TOF"), ins, ("q", "et"))
    assert rows == [(True, 0), (True, 0), (True, 10), (False, 20), (False, 20)]


# ---------------------------------------------------------------- TP

def test_tp_exact_pulse():
    ins = [True] * 6
    rows = seq(timer_prog("TP"), [{"inp": v} for v in ins], ("q", "et"))
    # pulse t = 0..30; ET holds PT while IN stays TRUE
    assert rows == [(True, 0), (True, 10), (True, 20), (False, 30), (False, 30), (False, 30)]


def test_tp_et_resets_when_in_falls_after_pulse():
    ins = [True, True, True, True, False, False]
    rows = seq(timer_prog("TP"), [{"inp": v} for v in ins], ("q", "et"))
    assert rows[3] == (False, 30)
    assert rows[4] == (False, 0) and rows[5] == (False, 0)


def test_tp_not_retriggerable_and_runs_to_end():
    # IN is a short blip, then toggles during the pulse: neither shortens nor restarts it
    ins = [True, False, True, False, False, False, False]
    rows = seq(timer_prog("TP"), [{"inp": v} for v in ins], ("q",))
    assert [q for (q,) in rows] == [True, True, True, False, False, False, False]


def test_tp_new_pulse_needs_new_rising_edge():
    ins = [True, True, True, True, True, False, True, True]
    rows = seq(timer_prog("TP"), [{"inp": v} for v in ins], ("q", "et"))
    assert [q for q, _ in rows] == [True, True, True, False, False, False, True, True]
    assert rows[6] == (True, 0) and rows[7] == (True, 10)


def test_tp_pt_changed_while_running_is_reread():
    ins = [{"inp": True, "pt": 100}, {"inp": True}, {"inp": True, "pt": 20}, {"inp": True}]
    rows = seq(timer_prog("TP"), ins, ("q", "et"))
    assert rows == [(True, 0), (True, 10), (False, 20), (False, 20)]


# ---------------------------------------------------------------- edges

EDGE = """
PROGRAM P
VAR clk : BOOL; r : R_TRIG; f : F_TRIG; rq : BOOL; fq : BOOL; END_VAR
r(CLK := clk);
f(CLK := clk);
rq := r.Q;
fq := f.Q;
END_PROGRAM
"""


def test_r_trig():
    ins = [False, True, True, False, True, False]
    rows = seq(EDGE, [{"clk": v} for v in ins], ("rq",))
    assert [q for (q,) in rows] == [False, True, False, False, True, False]


def test_r_trig_true_on_first_call():
    rows = seq(EDGE, [{"clk": True}, {"clk": True}], ("rq",))
    assert [q for (q,) in rows] == [True, False]


def test_f_trig():
    ins = [False, True, True, False, False, True, False]
    rows = seq(EDGE, [{"clk": v} for v in ins], ("fq",))
    # gridplc: no edge on the first call with CLK FALSE
    assert [q for (q,) in rows] == [False, False, False, True, False, False, True]


# ---------------------------------------------------------------- bistables

BISTABLE_IEC = """
PROGRAM P
VAR s : BOOL; r : BOOL; sr1 : SR; rs1 : RS; qsr : BOOL; qrs : BOOL; END_VAR
sr1(S1 := s, R := r);
rs1(S := s, R1 := r);
qsr := sr1.Q1;
qrs := rs1.Q1;
END_PROGRAM
"""

BISTABLE_CODESYS = """
PROGRAM P
VAR s : BOOL; r : BOOL; sr1 : SR; rs1 : RS; qsr : BOOL; qrs : BOOL; END_VAR
sr1(SET1 := s, RESET := r);
rs1(SET := s, RESET1 := r, Q1 => qrs);
qsr := sr1.Q1;
END_PROGRAM
"""

BI_INPUTS = [(False, False), (True, False), (False, False), (True, True), (False, False),
             (False, True), (False, False), (True, True)]
# SR: Q1 := S1 OR (NOT R AND Q1); RS: Q1 := NOT R1 AND (S OR Q1)
BI_EXPECT_SR = [False, True, True, True, True, False, False, True]
BI_EXPECT_RS = [False, True, True, False, False, False, False, False]


@pytest.mark.parametrize("src", [BISTABLE_IEC, BISTABLE_CODESYS], ids=["iec", "codesys"])
def test_sr_set_dominant_rs_reset_dominant(src):
    rows = seq(src, [{"s": s, "r": r} for s, r in BI_INPUTS], ("qsr", "qrs"))
    assert [a for a, _ in rows] == BI_EXPECT_SR
    assert [b for _, b in rows] == BI_EXPECT_RS


# ---------------------------------------------------------------- counters

CTU_IEC = """
PROGRAM P
VAR cu : BOOL; rst : BOOL; c : CTU; q : BOOL; cv : INT; END_VAR
c(CU := cu, R := rst, PV := 3);
q := c.Q; cv := c.CV;
END_PROGRAM
"""
CTU_CODESYS = CTU_IEC.replace("R := rst", "RESET := rst")


@pytest.mark.parametrize("src", [CTU_IEC, CTU_CODESYS], ids=["iec", "codesys"])
def test_ctu(src):
    ins = [(False, False), (True, False), (True, False), (False, False), (True, False),
           (False, False), (True, False), (True, False), (False, False), (True, False),
           (True, True), (False, False), (True, False)]
    rows = seq(src, [{"cu": a, "rst": b} for a, b in ins], ("cv", "q"))
    assert rows == [(0, False), (1, False), (1, False), (1, False), (2, False), (2, False),
                    (3, True), (3, True), (3, True), (4, True), (0, False), (0, False), (1, False)]


def test_ctu_holding_cu_through_reset_does_not_count():
    ins = [(True, True), (True, False), (False, False), (True, False)]
    rows = seq(CTU_IEC, [{"cu": a, "rst": b} for a, b in ins], ("cv",))
    # the edge seen while R is TRUE is consumed; CU still TRUE after R falls is no edge
    assert [v for (v,) in rows] == [0, 0, 0, 1]


CTD_IEC = """
PROGRAM P
VAR cd : BOOL; ld : BOOL; c : CTD; q : BOOL; cv : INT; END_VAR
c(CD := cd, LD := ld, PV := 2);
q := c.Q; cv := c.CV;
END_PROGRAM
"""
CTD_CODESYS = CTD_IEC.replace("LD := ld", "LOAD := ld")


@pytest.mark.parametrize("src", [CTD_IEC, CTD_CODESYS], ids=["iec", "codesys"])
def test_ctd(src):
    ins = [(False, False), (False, True), (True, False), (True, False), (False, False),
           (True, False), (False, False), (True, False), (False, True)]
    rows = seq(src, [{"cd": a, "ld": b} for a, b in ins], ("cv", "q"))
    assert rows == [(0, True), (2, False), (1, False), (1, False), (1, False), (0, True), (0, True),
                    (-1, True), (2, False)]


CTUD_IEC = """
PROGRAM P
VAR cu : BOOL; cd : BOOL; rst : BOOL; ld : BOOL; c : CTUD; qu : BOOL; qd : BOOL; cv : INT; END_VAR
c(CU := cu, CD := cd, R := rst, LD := ld, PV := 2);
qu := c.QU; qd := c.QD; cv := c.CV;
END_PROGRAM
"""
CTUD_CODESYS = CTUD_IEC.replace("R := rst", "RESET := rst").replace("LD := ld", "LOAD := ld")


@pytest.mark.parametrize("src", [CTUD_IEC, CTUD_CODESYS], ids=["iec", "codesys"])
def test_ctud(src):
    F, T = False, True
    ins = [  # cu, cd, r, ld
        (F, F, F, F), (T, F, F, F), (F, F, F, F), (T, F, F, F), (T, F, F, F), (F, T, F, F),
        (T, F, F, F), (F, F, F, F), (F, F, F, T), (T, F, F, F), (F, F, T, T), (F, T, F, F),
    ]
    rows = seq(src, [{"cu": a, "cd": b, "rst": c, "ld": d} for a, b, c, d in ins], ("cv", "qu", "qd"))
    assert rows == [
        (0, F, T),   # CV = 0: QD
        (1, F, F),
        (1, F, F),
        (2, T, F),   # CV >= PV
        (2, T, F),   # CU held: no count
        (1, F, F),   # CD edge
        (2, T, F),   # CU edge (CD falls: nothing)
        (2, T, F),
        (2, T, F),   # LD: CV := PV
        (3, T, F),
        (0, F, T),   # R dominates LD
        (-1, F, T),
    ]


def test_ctud_up_and_down_edges_same_scan_cancel():
    ins = [{"cu": True, "cd": True}, {"cu": False, "cd": False}]
    rows = seq(CTUD_IEC, ins, ("cv",))
    assert [v for (v,) in rows] == [0, 0]


def test_counter_with_mixed_names_in_one_project_and_positional():
    src = """
PROGRAM P
VAR a : CTU; b : CTU; x : BOOL; n : INT; END_VAR
n := n + 1;
x := NOT x;
a(CU := x, RESET := n = 5, PV := 10);
b(CU := x, R := n = 5, PV := 10);
END_PROGRAM
"""
    r = run(src, 8)
    # x: T F T F T F T F; rising at scans 1,3,5,7; reset at scan 5 -> CV counts scan 7 only
    assert r["P.a"]["CV"] == 1 and r["P.b"]["CV"] == 1


def test_block_unknown_parameter_is_error():
    src = """
PROGRAM P
VAR t : TON; END_VAR
t(IN := TRUE, TIME := T#5s);
END_PROGRAM
"""
    assert "E0051" in error_codes(src)


# ---------------------------------------------------------------- standard functions

def fn_prog(decls: str, body: str) -> dict:
    return run(f"PROGRAM P\nVAR\n{decls}\nEND_VAR\n{body}\nEND_PROGRAM\n")


def test_abs():
    r = fn_prog("a : INT; b : REAL; c : DINT; d : LREAL; e : SINT := -128; f : SINT;",
                "a := ABS(-5); b := ABS(REAL#-2.5); c := ABS(DINT#7); d := ABS(LREAL#-0.1); f := ABS(e);")
    assert r["P.a"] == 5 and r["P.b"] == 2.5 and r["P.c"] == 7 and r["P.d"] == 0.1
    assert r["P.f"] == -128       # |-128| wraps in SINT


@pytest.mark.parametrize("fn,arg,ref", [
    ("SQRT", 2.0, math.sqrt), ("LN", 10.0, math.log), ("LOG", 1000.0, math.log10),
    ("EXP", 1.5, math.exp), ("SIN", 0.5, math.sin), ("COS", 0.5, math.cos),
    ("TAN", 0.5, math.tan), ("ASIN", 0.5, math.asin), ("ACOS", 0.5, math.acos),
    ("ATAN", 0.5, math.atan),
])
def test_real_functions(fn, arg, ref):
    r = fn_prog(f"x : REAL := {arg}; y : REAL; lx : LREAL := {arg}; ly : LREAL;",
                f"y := {fn}(x); ly := {fn}(lx);")
    assert r["P.ly"] == pytest.approx(ref(arg), rel=1e-14)
    assert r["P.y"] == pytest.approx(ref(f32(arg)), rel=2e-7)
    assert r["P.y"] == f32(r["P.y"])          # REAL result is binary32


def test_real_function_exact_values():
    r = fn_prog("a : LREAL; b : LREAL; c : LREAL; d : REAL; e : LREAL;",
                "a := SQRT(16.0); b := LOG(100.0); c := LN(1.0); d := SQRT(REAL#2.25); e := EXP(0.0);")
    assert r["P.a"] == 4.0 and r["P.b"] == 2.0 and r["P.c"] == 0.0 and r["P.d"] == 1.5 and r["P.e"] == 1.0


def test_expt():
    r = fn_prog("a : LREAL; b : REAL; c : LREAL; d : LREAL;",
                "a := EXPT(2.0, 10); b := EXPT(REAL#9.0, REAL#0.5); c := EXPT(2.0, -1); d := EXPT(10.0, 3.0);")
    assert r["P.a"] == 1024.0 and r["P.b"] == 3.0 and r["P.c"] == 0.5 and r["P.d"] == 1000.0


def test_min_max():
    r = fn_prog("a : INT; b : INT; c : INT; d : INT; e : REAL; f : DINT; x : INT := -3;",
                "a := MIN(4, x); b := MAX(4, x); c := MIN(9, 2, 7, x, 5); d := MAX(1, 8, 3); "
                "e := MAX(REAL#1.5, REAL#-2.0, REAL#0.25); f := MIN(DINT#70000, DINT#-70000, DINT#0);")
    assert (r["P.a"], r["P.b"], r["P.c"], r["P.d"]) == (-3, 4, -3, 8)
    assert r["P.e"] == 1.5 and r["P.f"] == -70000


def test_min_max_time():
    r = fn_prog("a : TIME; b : TIME;", "a := MIN(T#2s, T#500ms); b := MAX(T#2s, T#500ms, T#1m);")
    assert r["P.a"] == 500 and r["P.b"] == 60000


@pytest.mark.parametrize("v,expected", [(150, 100), (-5, 0), (42, 42), (0, 0), (100, 100)])
def test_limit(v, expected):
    r = fn_prog(f"v : INT := {v}; y : INT;", "y := LIMIT(0, v, 100);")
    assert r["P.y"] == expected


def test_limit_real():
    r = fn_prog("y : REAL; z : REAL;", "y := LIMIT(0.0, 1.25, 1.0); z := LIMIT(MN := -1.0, IN := -0.5, MX := 1.0);")
    assert r["P.y"] == 1.0 and r["P.z"] == -0.5


def test_sel():
    r = fn_prog("a : INT; b : INT; g : BOOL := TRUE; s : STRING;",
                "a := SEL(FALSE, 10, 20); b := SEL(g, 10, 20); s := SEL(g, 'no', 'yes');")
    assert r["P.a"] == 10 and r["P.b"] == 20 and r["P.s"] == "yes"


@pytest.mark.parametrize("k,expected", [(0, 10), (1, 20), (2, 30), (3, 40)])
def test_mux(k, expected):
    r = fn_prog(f"k : INT := {k}; y : INT;", "y := MUX(k, 10, 20, 30, 40);")
    assert r["P.y"] == expected


def test_move():
    r = fn_prog("a : INT; b : REAL; c : ARRAY[1..2] OF INT; d : ARRAY[1..2] OF INT := [3, 4];",
                "a := MOVE(7); b := MOVE(REAL#2.5); c := MOVE(d); d[1] := 0;")
    assert r["P.a"] == 7 and r["P.b"] == 2.5 and r["P.c"] == [3, 4] and r["P.d"] == [0, 4]


@pytest.mark.parametrize("expr,typ,expected", [
    ("SHL(BYTE#16#81, 1)", "BYTE", 0x02),
    ("SHL(BYTE#1, 7)", "BYTE", 0x80),
    ("SHL(BYTE#1, 8)", "BYTE", 0x00),
    ("SHR(BYTE#16#81, 1)", "BYTE", 0x40),
    ("SHL(WORD#16#8001, 4)", "WORD", 0x0010),
    ("SHR(WORD#16#8001, 15)", "WORD", 0x0001),
    ("SHL(DWORD#16#80000001, 1)", "DWORD", 0x00000002),
    ("SHR(DWORD#16#80000000, 31)", "DWORD", 0x00000001),
    ("ROL(BYTE#16#81, 1)", "BYTE", 0x03),
    ("ROR(BYTE#16#81, 1)", "BYTE", 0xC0),
    ("ROL(BYTE#16#81, 9)", "BYTE", 0x03),
    ("ROL(WORD#16#8001, 4)", "WORD", 0x0018),
    ("ROR(WORD#16#8001, 4)", "WORD", 0x1800),
    ("ROL(DWORD#16#80000001, 1)", "DWORD", 0x00000003),
    ("ROR(DWORD#16#00000001, 1)", "DWORD", 0x80000000),
    ("ROR(DWORD#16#12345678, 8)", "DWORD", 0x78123456),
    ("SHL(LWORD#1, 63)", "LWORD", 1 << 63),
    ("ROL(LWORD#16#8000000000000000, 1)", "LWORD", 1),
])
def test_shift_rotate(expr, typ, expected):
    r = fn_prog(f"y : {typ};", f"y := {expr};")
    assert r["P.y"] == expected


def test_shift_rotate_on_variables():
    r = fn_prog("b : BYTE := 16#F0; w : WORD := 16#00FF; n : INT := 4; x : BYTE; y : WORD; z : BYTE;",
                "x := ROL(b, n); y := SHL(w, n); z := SHR(b, n);")
    assert r["P.x"] == 0x0F and r["P.y"] == 0x0FF0 and r["P.z"] == 0x0F


@pytest.mark.parametrize("v,expected", [(2.7, 2), (-2.7, -2), (2.5, 2), (-0.5, 0), (3.0, 3), (1e6 + 0.9, 1000000)])
def test_trunc(v, expected):
    r = fn_prog(f"x : LREAL := {v!r}; y : DINT;", "y := TRUNC(x);")
    assert r["P.y"] == expected


def test_timer_in_slower_task_reads_latched_time():
    src = """
PROGRAM Slow
VAR t : TON; runs : INT; qAt : INT; END_VAR
runs := runs + 1;
t(IN := TRUE, PT := T#60ms);
IF t.Q AND qAt = 0 THEN qAt := runs; END_IF;
END_PROGRAM
PROGRAM Fast
VAR runs : INT; END_VAR
runs := runs + 1;
END_PROGRAM
CONFIGURATION C
TASK T10 (INTERVAL := T#10ms, PRIORITY := 1);
TASK T30 (INTERVAL := T#30ms, PRIORITY := 2);
PROGRAM f WITH T10 : Fast;
PROGRAM s WITH T30 : Slow;
END_CONFIGURATION
"""
    r = run(src, 10)               # t = 0 .. 90 ms
    assert r["f.runs"] == 10 and r["s.runs"] == 4       # slow at 0, 30, 60, 90
    assert r["s.qAt"] == 3                              # ET = 60 ms at its third run (t = 60)
    assert r["s.t"]["ET"] == 60
