"""IO_OK / IO_QUALITY / IO_AGE: ST reads the quality of inputs bound to field I/O.

The contract with the engine: `ctx.io[(id(tag.holder), tag.key)] = (quality, ts_ns)`
for the variable's resolved tag; no entry means good, no timestamp.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from runtime.io.quality import BAD, GOOD, STALE, WAITING
from tests.stutil import build, error_codes

MS = 1_000_000

PROGRAM = """
TYPE Rack : STRUCT vMax : REAL; tMax : REAL; END_STRUCT; END_TYPE
VAR_GLOBAL gSoc : REAL; END_VAR

FUNCTION GlobalOk : BOOL
VAR_EXTERNAL gSoc : REAL; END_VAR
VAR_INPUT x : REAL; END_VAR
GlobalOk := IO_OK(gSoc) AND IO_OK(x);      (* x: a function's input, never bound *)
END_FUNCTION

FUNCTION_BLOCK Guard
VAR_INPUT vIn : REAL; END_VAR
VAR_OUTPUT inOk : BOOL; END_VAR
inOk := IO_OK(vIn);
END_FUNCTION_BLOCK

PROGRAM Main
VAR_EXTERNAL gSoc : REAL; END_VAR
VAR
  t : REAL;
  ok : BOOL; q : INT; age : TIME;
  racks : ARRAY[1..2] OF Rack;
  cells : ARRAY[1..3, 0..1] OF REAL;
  i : INT := 2;
  okCell : BOOL; okCellOther : BOOL; qRack : INT; okGlobal : BOOL; qGlobal : INT; viaFn : BOOL;
  guard : Guard; guardSaysOk : BOOL;
  stale : BOOL;
END_VAR
ok := IO_OK(t);
q := IO_QUALITY(t);
age := IO_AGE(t);
okCell := IO_OK(cells[i, 1]);
okCellOther := IO_OK(cells[1, 1]);
qRack := IO_QUALITY(racks[i].tMax);
okGlobal := IO_OK(gSoc);
qGlobal := IO_QUALITY(gSoc);
viaFn := GlobalOk(t);
guard(vIn := t);
guardSaysOk := guard.inOk;
stale := IO_QUALITY(t) = 1 AND IO_AGE(t) > T#2s;
END_PROGRAM
"""


@pytest.fixture
def engine():
    e = build(PROGRAM, interval="100ms")
    yield e
    e.close()


def _set(engine, path: str, quality: int, ts_ns: int | None = None) -> None:
    tag = engine.tag(path)
    engine.ctx.io[(id(tag.holder), tag.key)] = (quality, ts_ns)


def _get(engine, path: str):
    return engine.tag(path).get()


def test_unbound_variables_are_good_with_age_zero(engine):
    engine.scan(5000 * MS)
    assert _get(engine, "Main.ok") is True
    assert _get(engine, "Main.q") == GOOD
    assert _get(engine, "Main.age") == 0
    assert _get(engine, "Main.okCell") and _get(engine, "Main.okGlobal") and _get(engine, "Main.viaFn")
    assert _get(engine, "Main.guardSaysOk") is True


@pytest.mark.parametrize("quality", [GOOD, STALE, BAD, WAITING])
def test_quality_numbers_reach_the_program(engine, quality):
    _set(engine, "Main.t", quality, 1000 * MS)
    engine.scan(1000 * MS)
    assert _get(engine, "Main.q") == quality
    assert _get(engine, "Main.ok") is (quality == GOOD)


def test_age_is_latched_time_minus_source_timestamp_in_ms(engine):
    _set(engine, "Main.t", STALE, 1_250 * MS + 400_000)      # sub-ms part truncates
    engine.scan(4_000 * MS)
    assert _get(engine, "Main.age") == 2_749
    assert _get(engine, "Main.stale") is True
    engine.scan(4_100 * MS)
    assert _get(engine, "Main.age") == 2_849                  # the same timestamp, a later scan


def test_age_without_timestamp_or_from_the_future_is_zero(engine):
    _set(engine, "Main.t", STALE, None)
    engine.scan(4_000 * MS)
    assert _get(engine, "Main.age") == 0
    _set(engine, "Main.t", GOOD, 4_150 * MS)      # stamped after this scan's latch
    engine.scan(4_100 * MS)
    assert _get(engine, "Main.age") == 0


def test_element_of_a_two_dimensional_array_has_its_own_quality(engine):
    _set(engine, "Main.cells[2, 1]", BAD)
    engine.scan(0)
    assert _get(engine, "Main.okCell") is False          # cells[i, 1] with i = 2
    assert _get(engine, "Main.okCellOther") is True      # cells[1, 1]
    engine.set_text("Main.i", "3")
    engine.scan(100 * MS)
    assert _get(engine, "Main.okCell") is True


def test_member_of_a_struct_in_an_array(engine):
    _set(engine, "Main.racks[2].tMax", WAITING)
    _set(engine, "Main.racks[1].tMax", BAD)
    engine.scan(0)
    assert _get(engine, "Main.qRack") == WAITING


def test_global_in_a_program_and_in_a_function(engine):
    # globals have no tag path yet; the holder is the engine's globals object
    engine.ctx.io[(id(engine.globals), "gSoc")] = (STALE, 0)
    engine.scan(100 * MS)
    assert _get(engine, "Main.okGlobal") is False
    assert _get(engine, "Main.qGlobal") == STALE
    assert _get(engine, "Main.viaFn") is False


def test_fb_input_is_a_copy_not_the_callers_field_variable(engine):
    _set(engine, "Main.t", BAD)
    engine.scan(0)
    assert _get(engine, "Main.ok") is False
    assert _get(engine, "Main.guardSaysOk") is True      # guard.vIn is the block's own copy
    _set(engine, "Main.guard.vIn", BAD)                  # a map binding the block's input itself
    engine.scan(100 * MS)
    assert _get(engine, "Main.guardSaysOk") is False


def test_the_engines_input_path_feeds_the_same_table():
    e = build(PROGRAM, interval="100ms")
    try:
        e.declare_input("Main.t", timeout_ns=2_000 * MS)
        e.stage_input("Main.t", 21.5, GOOD, 1_000 * MS)
        e.scan(1_500 * MS)
        assert (_get(e, "Main.q"), _get(e, "Main.age"), _get(e, "Main.t")) == (GOOD, 500, 21.5)
        e.scan(3_100 * MS)                               # older than its timeout: stale
        assert (_get(e, "Main.q"), _get(e, "Main.ok"), _get(e, "Main.age")) == (STALE, False, 2_100)
    finally:
        e.close()


DECLS = """
TYPE Mode : (IDLE, RUN); END_TYPE
TYPE Rack : STRUCT vMax : REAL; END_STRUCT; END_TYPE
PROGRAM P
VAR t : REAL; w : WORD; a : ARRAY[1..4] OF REAL; r : Rack; tmr : TON; ok : BOOL; m : Mode; END_VAR
ok := {};
END_PROGRAM
"""


@pytest.mark.parametrize("arg", [
    "IO_OK(t + 1.0)",          # an expression
    "IO_OK(2.5)",              # a literal
    "IO_OK(tmr)",              # an FB instance
    "IO_OK(a)",                # a whole array
    "IO_OK(r)",                # a whole struct
    "IO_OK(w.3)",              # a bit
    "IO_OK(Mode.IDLE)",        # an enumeration value
    "IO_QUALITY(SQRT(t)) = 0",  # a function result
])
def test_argument_that_is_not_a_variable_is_E0053(arg):
    assert error_codes(DECLS.format(arg)) == ["E0053"]


@pytest.mark.parametrize("arg", ["IO_OK(t, t)", "IO_OK()", "IO_OK(X := t)"])
def test_wrong_argument_count_or_name_is_E0050(arg):
    assert error_codes(DECLS.format(arg)) == ["E0050"]


def test_result_types():
    ok = DECLS.format("IO_OK(a[2]) AND IO_QUALITY(r.vMax) = 0 AND IO_AGE(t) < T#1s AND IO_OK(tmr.Q) AND IO_OK(IN := t)")
    assert error_codes(ok) == []
    assert error_codes(DECLS.replace("ok : BOOL", "ok : INT").format("IO_OK(t)")) == ["E0020"]


def test_explain_E0053_mentions_the_fb_input_copy():
    out = subprocess.run([sys.executable, "-m", "runtime.cli", "explain", "E0053"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "VAR_INPUT" in out.stdout and "BOOL input" in out.stdout
