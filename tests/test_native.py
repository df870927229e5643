"""The native backend (plc_lang/native/) gives the Python backend's values
and faults bit for bit, and says why when it cannot compile a program."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plc_lang.driver import compile_project, read_sources
from plc_lang.native import native_program
from plc_lang.native.build import compiler
from plc_lang.source import SourceFile
from runtime.engine import Engine
from tests.stutil import DualEngine, shared_dir

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(compiler() is None, reason="no C compiler")


def _dual(src: str, interval_ns: int | None = 10_000_000, **kw) -> DualEngine:
    r = compile_project([SourceFile("t.st", src)])
    assert r.ok, [str(d) for d in r.diagnostics if d.is_error]
    nat, why = native_program(r.program)
    assert nat is not None, why
    kw = dict(interval_ns=None if r.project.config else interval_ns, **kw)
    return DualEngine(Engine(r.program, **kw), Engine(nat, **kw))


def test_semantics_suites_agree_with_the_python_backend(tmp_path):
    """Every program of the language suites run on both backends in lockstep
    (tests/stutil.DualEngine): the same variables after every scan and the
    same faults, or a test fails."""
    log = tmp_path / "backends.log"
    env = dict(os.environ, GRIDPLC_DIFF_NATIVE="1", GRIDPLC_DIFF_NATIVE_LOG=str(log))
    suites = ["tests/test_semantics.py", "tests/test_conversions.py", "tests/test_stdlib_blocks.py",
              "tests/test_int_properties.py", "tests/test_globals.py"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *suites],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    lines = log.read_text().splitlines()
    native = sum(line == "native" for line in lines)
    # the suites are mostly numeric: nearly all of them must have gone native
    assert native >= 300 and native >= 0.85 * len(lines), (native, len(lines))


def test_site_protect_identical_every_scan():
    text = (shared_dir() / "bench" / "site_protect.st").read_text()
    e = _dual(text)
    try:
        e.tag("Main.siteLimit").set(900.0)
        assert e.run(250) is None          # compares all 3,000-odd variables after every scan
        snap = e._nat.snapshot()
        assert snap["Main.online"] == 8 and snap["Main.dispatch"] == 900.0
    finally:
        e.close()


@pytest.mark.parametrize("decls,body,what,line", [
    ("a : ARRAY[1..4] OF INT; i : INT := 7;", "a[i] := 1;", "index 7 is outside the array bounds 1..4", 6),
    ("x : DINT; y : DINT;", "x := 10 / y;", "division by zero", 6),
    ("x : REAL; y : REAL;", "x := 1.0 / y;", "division by zero", 6),
    ("x : INT; r : REAL;", "r := SQRT(-1.0);\nx := REAL_TO_INT(r);", "cannot convert float NaN to integer", 7),
    ("x : INT; r : REAL := 1.0E38;", "r := r * 10.0;\nx := REAL_TO_INT(r);",
     "cannot convert float infinity to integer", 7),
    ("x : INT(0..10); y : INT := 11;", "x := y;", "value 11 is outside the subrange 0..10", 6),
    ("x : INT; k : INT := 3;", "x := MUX(k, 1, 2, 3);", "MUX selector 3 is outside 0..2", 6),
    ("x : REAL; r : REAL := 1.0E38;", "r := r * 10.0;\nx := SIN(r);", "math domain error", 7),
])
def test_faults_match(decls, body, what, line):
    src = f"PROGRAM P\nVAR\n{decls}\nEND_VAR\n\n{body}\nEND_PROGRAM\n"
    e = _dual(src)
    try:
        fault = e.run(1)            # DualEngine asserts both backends report the same fault
        assert fault is not None and what in fault.what and fault.where.split(":")[1] == str(line), fault
    finally:
        e.close()


def test_warm_and_cold_restarts_keep_the_same_values():
    src = """
TYPE Rec : STRUCT v : REAL; k : INT; END_STRUCT; END_TYPE
PROGRAM P
VAR RETAIN hist : ARRAY[1..3] OF Rec; n : INT; END_VAR
VAR PERSISTENT total : DINT; END_VAR
VAR t : TON; i : INT; END_VAR
n := n + 1; total := total + n;
FOR i := 1 TO 3 DO hist[i].v := hist[i].v + INT_TO_REAL(i) * 0.1; hist[i].k := n; END_FOR;
t(IN := TRUE, PT := T#30ms);
END_PROGRAM
CONFIGURATION C RESOURCE R ON PLC TASK T(INTERVAL := T#10ms, PRIORITY := 1); PROGRAM P WITH T : P;
END_RESOURCE END_CONFIGURATION
"""
    e = _dual(src)
    try:
        assert e.run(5) is None
        e.reset_task("T", "warm", "test")       # both engines: new objects, retained values restored
        e.compare()
        assert e.run(3, start_ns=50_000_000) is None
        e.reset_task("T", "cold", "test")
        e.compare()
        assert e.run(2, start_ns=80_000_000) is None
        snap = e._nat.snapshot()
        assert snap["P.n"] == 2 and snap["P.total"] == 15 + (6 + 7 + 8) + (1 + 2) and snap["P.hist"][0]["k"] == 2
    finally:
        e.close()


def _p(decls: str, body: str, extra: str = "") -> str:
    return f"{extra}\nPROGRAM P\nVAR\n{decls}\nEND_VAR\n{body}\nEND_PROGRAM\n"


@pytest.mark.parametrize("decls,body,want", [
    # CASE over ULINT compares in its own type: labels at and above 2**63
    ("x : ULINT := 16#FFFFFFFFFFFFFFFF; k : INT;",
     "CASE x OF 16#FFFFFFFFFFFFFFFF: k := 1; ELSE k := 2; END_CASE;", {"P.k": 1}),
    ("x : ULINT := 16#8000000000000000; k : INT;",
     "CASE x OF 5..16#FFFFFFFFFFFFFFFF: k := 1; ELSE k := 2; END_CASE;", {"P.k": 1}),
    # an integer literal above 2**63 - 1 in a REAL context
    ("l : LREAL; b1 : BOOL; x : LREAL;", "b1 := l > 16#FFFFFFFFFFFFFFFF; x := l + 16#FFFFFFFFFFFFFFFF;",
     {"P.b1": False, "P.x": 18446744073709551616.0}),
    # SHL/SHR read the value only when the count is in range (the division never runs)
    ("z : INT; n : INT := 100; y : INT := 7;", "y := SHL(10 / z, n);", {"P.y": 0}),
])
def test_review_findings_agree(decls, body, want):
    e = _dual(_p(decls, body))
    try:
        assert e.run(2) is None
        snap = e._nat.snapshot()
        assert {k: snap[k] for k in want} == want
    finally:
        e.close()


def test_a_bit_store_checks_the_element_index_before_the_value():
    e = _dual(_p("a : ARRAY[0..3] OF INT; k : INT := 7; z : INT;", "a[k].3 := 1 / z > 0;"))
    try:
        f = e.run(1)
        assert f is not None and "index 7 is outside the array bounds 0..3" in f.what and f.where == "t.st:6:3"
    finally:
        e.close()


def test_a_global_loop_variable_a_function_changes_keeps_its_index_checks():
    src = """
FUNCTION f : INT
VAR_INPUT v : INT; END_VAR
VAR_EXTERNAL gi : INT; END_VAR
gi := v; f := 0;
END_FUNCTION
PROGRAM P
VAR_EXTERNAL gi : INT; arr : ARRAY[0..3] OF INT; END_VAR
VAR x : INT; y : INT; END_VAR
FOR gi := 0 TO 3 DO y := f(-1); x := x + arr[gi]; END_FOR;
END_PROGRAM
CONFIGURATION C
VAR_GLOBAL gi : INT; arr : ARRAY[0..3] OF INT := [10, 20, 30, 40]; END_VAR
RESOURCE R ON PLC TASK T(INTERVAL := T#10ms, PRIORITY := 1); PROGRAM P WITH T : P; END_RESOURCE
END_CONFIGURATION
"""
    e = _dual(src)
    try:
        f = e.run(1)          # both backends: a checked index, no read outside the array
        assert f is not None and "index -1 is outside the array bounds 0..3" in f.what, f
    finally:
        e.close()


def test_functions_with_struct_locals_and_array_outputs_compile_natively():
    src = """
TYPE Pt : STRUCT x : REAL; y : REAL; END_STRUCT; END_TYPE
FUNCTION fill : INT
VAR_INPUT n : INT; END_VAR
VAR_OUTPUT o : ARRAY[1..3] OF INT; END_VAR
VAR p : Pt; i : INT; END_VAR
p.x := 1.5;
FOR i := 1 TO 3 DO o[i] := n * i; END_FOR;
fill := REAL_TO_INT(p.x * 2.0);
END_FUNCTION
PROGRAM P
VAR a : ARRAY[1..3] OF INT; r : INT; END_VAR
r := fill(4, o => a);
END_PROGRAM
"""
    e = _dual(src)
    try:
        assert e.run(1) is None
        snap = e._nat.snapshot()
        assert snap["P.a"] == [4, 8, 12] and snap["P.r"] == 3
    finally:
        e.close()


def test_runaway_loop_stops_on_the_watchdog_natively():
    src = "PROGRAM P\nVAR x : DINT; END_VAR\nWHILE TRUE DO x := x + 1; END_WHILE;\nEND_PROGRAM\n"
    r = compile_project([SourceFile("t.st", src)])
    nat, _ = native_program(r.program)
    e = Engine(nat, interval_ns=10_000_000, watchdog_s=0.2)
    try:
        fault = e.run(1)
        assert fault is not None and "watchdog" in fault.what and fault.where.startswith("t.st:3")
        assert e.tag("P.x").get() > 0      # the state the loop reached stays readable
    finally:
        e.close()


def test_unsupported_programs_say_why_and_run_on_python(tmp_path, capsys):
    src = "PROGRAM P\nVAR s : STRING; n : INT; END_VAR\nn := n + 1; s := 'x';\nEND_PROGRAM\n"
    r = compile_project([SourceFile("t.st", src)])
    nat, why = native_program(r.program)
    assert nat is None and "STRING" in why
    p = tmp_path / "s.st"
    p.write_text(src)
    from runtime.cli import main
    assert main(["sim", str(p), "--interval", "10ms", "--cycles", "3", "--backend", "native"]) == 2
    assert "STRING" in capsys.readouterr().err
    assert main(["sim", str(p), "--interval", "10ms", "--cycles", "3"]) == 0      # auto: Python
    assert "P.n = 3" in capsys.readouterr().out


def test_huge_function_locals_stay_on_the_python_backend():
    src = ("FUNCTION Big : REAL\nVAR_INPUT k : DINT; END_VAR\nVAR buf : ARRAY[0..999999] OF LREAL; END_VAR\n"
           "buf[k] := 1.0; Big := LREAL_TO_REAL(buf[k]);\nEND_FUNCTION\n"
           "PROGRAM P\nVAR x : REAL; END_VAR\nx := Big(3);\nEND_PROGRAM\n")
    nat, why = native_program(compile_project([SourceFile("t.st", src)]).program)
    assert nat is None and "8000012 bytes of local variables in Big" in why


def test_compile_emits_the_c(tmp_path, capsys):
    from runtime.cli import main
    p = tmp_path / "n.st"
    p.write_text("PROGRAM P\nVAR n : INT; END_VAR\nn := n + 1;\nEND_PROGRAM\n")
    assert main(["compile", str(p), "--emit-c"]) == 0
    out = capsys.readouterr().out
    assert "static void P_P_body(GpCtx *c, P_P *self)" in out and "int gp_run_P_P(" in out
    p.write_text("PROGRAM P\nVAR s : STRING; END_VAR\ns := 'x';\nEND_PROGRAM\n")
    assert main(["compile", str(p), "--emit-c"]) == 2
    assert "does not compile variables of type STRING" in capsys.readouterr().err


def _sim(args, cwd):
    r = subprocess.run([sys.executable, "-m", "runtime.cli", *args], cwd=cwd, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return r.returncode, r.stdout


def test_scenario_report_and_trace_are_byte_identical(tmp_path):
    """A failing scenario on site_protect, traced: the report (first failing
    scan, values) and the CSV/VCD traces do not depend on the backend."""
    sc = tmp_path / "site.toml"
    sc.write_text(f'[scenario]\nname = "site"\nsources = ["{shared_dir() / "bench" / "site_protect.st"}"]\n'
                  'duration = "60s"\n'
                  '[[input]]\ntag = "Main.siteLimit"\nkind = "ramp"\nfrom = "1s"\nstart = 1500.0\nrate = -25.0\n'
                  '[[expect]]\nalways = "Main.dispatch <= Main.siteLimit"\n'
                  '[[expect]]\nalways = "Main.dispatch > 600.0"\n')
    outs = {}
    for b in ("python", "native"):
        d = tmp_path / b
        code, out = _sim(["sim", "--scenario", str(sc), "--backend", b, "--jobs", "1", "--trace",
                          "Main.dispatch,Main.available,Main.racks[3].state", "--trace-dir", str(d)], tmp_path)
        assert code == 1, out
        outs[b] = (out.replace(str(d), "DIR"), (d / "site.csv").read_bytes(), (d / "site.vcd").read_bytes())
    assert "first failed at scan" in outs["python"][0]
    assert outs["python"] == outs["native"]


def test_fuzz_finds_the_same_counterexample(tmp_path):
    from runtime.fuzz import fuzz, write_counterexample
    sc = ROOT / "tests" / "scenarios" / "boost_fuzz.toml"
    texts = []
    for b in ("python", "native"):
        res = fuzz(str(sc), runs=400, seed=0, jobs=1, duration_ns=8_000_000_000, backend=b)
        assert res.batch is not None and res.batch.violation is not None
        (tmp_path / b).mkdir()
        out = tmp_path / b / "cx.toml"
        write_counterexample(res, str(out))
        texts.append(out.read_text())
    assert texts[0] == texts[1]


def test_library_is_cached_by_source(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDPLC_NATIVE_CACHE", str(tmp_path))
    src = "PROGRAM P\nVAR n : INT; END_VAR\nn := n + 1;\nEND_PROGRAM\n"
    r = compile_project([SourceFile("t.st", src)])
    a, _ = native_program(r.program)
    b, _ = native_program(compile_project([SourceFile("t.st", src)]).program)
    assert a.lib_path == b.lib_path and len(list(tmp_path.glob("*.so"))) == 1
    c, _ = native_program(compile_project([SourceFile("t.st", src.replace("+ 1", "+ 2"))]).program)
    assert c.lib_path != a.lib_path and not list(tmp_path.glob("*.c"))
    e = Engine(c, interval_ns=10_000_000)
    try:
        e.run(2)
        assert json.dumps(e.snapshot()) == '{"P.n": 4}'
    finally:
        e.close()
