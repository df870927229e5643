"""The `gridplc` command line, run as a subprocess: the contract scripts rely on.

  check    exit 0 / 1, rich (default), short and JSON diagnostics, all errors
  sim      --cycles/--interval/--set/--json/--program/--watchdog, exit 0/1/2/3
  compile  --emit-python
  explain  CODE (exit 0; unknown code exit 2)

and, for every command: no input ever produces a Python traceback.
"""
from __future__ import annotations

from tests.stutil import shared_dir
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plc_lang.codes import CODES

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SITE_PROTECT = shared_dir() / "bench" / "site_protect.st"
BATTERY_GUARD = REPO / "programs" / "examples" / "battery_guard.st"

SHORT_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning)"
                        r"\[(?P<code>[EW]\d{4})\]: (?P<msg>.+)$")


class Run:
    def __init__(self, cp: subprocess.CompletedProcess):
        self.rc = cp.returncode
        self.out_bytes = cp.stdout
        self.out = cp.stdout.decode("utf-8", "replace")
        self.err = cp.stderr.decode("utf-8", "replace")
        self.args = cp.args

    def __repr__(self) -> str:
        out = self.out if len(self.out) < 3000 else self.out[:3000] + f"... ({len(self.out)} chars)"
        return f"<gridplc {self.args[3:]} rc={self.rc}\n--- stdout\n{out}\n--- stderr\n{self.err}>"

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError(f"stdout is not one JSON document ({e}): {self!r}") from None


def gridplc(*args, cwd: Path = REPO, timeout: float = 120, env: dict | None = None) -> Run:
    """Run `python -m runtime.cli ARGS`; every run is checked for tracebacks."""
    cp = subprocess.run([sys.executable, "-m", "runtime.cli", *map(str, args)], cwd=cwd,
                        capture_output=True, timeout=timeout,
                        env=None if env is None else {**os.environ, **env})
    r = Run(cp)
    assert "Traceback" not in r.err, f"Python traceback on stderr: {r!r}"
    return r


def fx(name: str) -> str:
    return str(FIXTURES / name)


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


BAD_PROGRAM = """\
PROGRAM P
VAR
  b : BOOL;
  i : INT;
  r : REAL;
END_VAR
b := i;
i := r;
i := undeclaredThing;
END_PROGRAM
"""

WARN_ONLY = """\
PROGRAM P
VAR
  x : INT;
  unused : INT;
END_VAR
x := x + 1;
END_PROGRAM
"""


# ---------------------------------------------------------------- check

def test_check_clean_file_exits_0_and_prints_no_diagnostic():
    r = gridplc("check", fx("clean.st"))
    assert r.rc == 0, r
    assert "error[" not in r.out and "warning[" not in r.out, r


def test_check_file_with_errors_exits_1():
    r = gridplc("check", fx("several_errors.st"))
    assert r.rc == 1, r


def test_check_reports_every_error_of_a_file_not_only_the_first():
    r = gridplc("check", fx("several_errors.st"), "--format", "short")
    assert r.rc == 1, r
    found = sorted((int(m["line"]), m["code"]) for m in map(SHORT_LINE.match, r.out.splitlines()) if m)
    assert found == [(9, "E0020"), (10, "E0041"), (21, "E0030"), (22, "E0011"), (23, "E0023")], r


def test_check_rich_format_is_the_default_with_header_source_line_and_caret(tmp_path):
    path = write(tmp_path, "bad.st", BAD_PROGRAM)
    r = gridplc("check", path)
    assert r.rc == 1, r
    lines = r.out.splitlines()
    head = f"{path}:9:6: error[E0011]: 'undeclaredThing' is not declared"
    assert head in lines, r
    i = lines.index(head)
    src_line = next(ln for ln in lines[i + 1:i + 4] if "i := undeclaredThing;" in ln)
    caret_line = lines[lines.index(src_line, i) + 1]
    bar = src_line.index("| ") + 2
    assert caret_line[bar:].startswith(" " * 5 + "^"), r          # column 6 -> five blanks
    assert set(caret_line[bar:].strip()) == {"^"}, r
    # every diagnostic appears, each with its header
    for ln, code in ((7, "E0020"), (8, "E0021"), (9, "E0011")):
        assert any(x.startswith(f"{path}:{ln}:") and f"error[{code}]" in x for x in lines), r


@pytest.mark.parametrize("indent", ["    ", "\t"], ids=["spaces", "tab"])
def test_check_rich_caret_sits_under_the_reported_column(tmp_path, indent):
    src = f"PROGRAM P\nVAR\n  b : BOOL;\nEND_VAR\n{indent}b := 5;\nEND_PROGRAM\n"
    path = write(tmp_path, "caret.st", src)
    r = gridplc("check", path, "--format", "json")
    d = r.json()
    assert len(d) == 1 and d[0]["line"] == 5 and d[0]["code"] == "E0020", r
    r = gridplc("check", path)
    lines = r.out.splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("5 |"))
    shown, caret = lines[k], lines[k + 1]
    bar = shown.index("| ") + 2
    pos = caret.index("^")
    assert caret.index("|") + 2 == bar, r
    assert shown[pos] == "5", f"caret points at {shown[pos]!r}, not at '5':\n{shown}\n{caret}"


def test_check_short_format_prints_one_line_per_diagnostic(tmp_path):
    # E0021 carries a note; the short format must still be one line per diagnostic
    path = write(tmp_path, "bad.st", BAD_PROGRAM)
    r = gridplc("check", path, "--format", "short")
    assert r.rc == 1, r
    lines = [ln for ln in r.out.splitlines() if ln.strip()]
    assert len(lines) == 3, r
    for ln in lines:
        m = SHORT_LINE.match(ln)
        assert m, f"not a short diagnostic line: {ln!r}"
        assert m["file"] == path
    assert [(SHORT_LINE.match(ln)["line"], SHORT_LINE.match(ln)["code"]) for ln in lines] == \
        [("7", "E0020"), ("8", "E0021"), ("9", "E0011")]


def test_check_json_format_is_a_list_with_the_documented_keys(tmp_path):
    path = write(tmp_path, "bad.st", BAD_PROGRAM)
    r = gridplc("check", path, "--format", "json")
    assert r.rc == 1, r
    d = r.json()
    assert isinstance(d, list) and len(d) == 3, r
    for item in d:
        assert {"code", "severity", "message", "file", "line", "column"} <= set(item), item
        assert item["severity"] == "error" and item["file"] == path
        assert isinstance(item["line"], int) and isinstance(item["column"], int)
    assert [(x["line"], x["column"], x["code"]) for x in d] == [(7, 6, "E0020"), (8, 6, "E0021"), (9, 6, "E0011")]
    assert "undeclaredThing" in d[2]["message"]


def test_check_json_of_a_clean_file_is_an_empty_list():
    r = gridplc("check", fx("clean.st"), "--format", "json")
    assert r.rc == 0, r
    assert r.json() == []


def test_check_warnings_do_not_make_the_exit_code_1(tmp_path):
    path = write(tmp_path, "warn.st", WARN_ONLY)
    for fmt in ("rich", "short", "json"):
        r = gridplc("check", path, "--format", fmt)
        assert r.rc == 0, r
        assert "W0101" in r.out, r
    d = gridplc("check", path, "--format", "json").json()
    assert [(x["code"], x["severity"], x["line"]) for x in d] == [("W0101", "warning", 4)]


def test_check_several_files_reports_errors_of_each(tmp_path):
    a = write(tmp_path, "a.st", BAD_PROGRAM)
    b = write(tmp_path, "b.st", "PROGRAM Q\nVAR z : INT; END_VAR\nz := nothere;\nEND_PROGRAM\n")
    r = gridplc("check", a, b, "--format", "json")
    assert r.rc == 1, r
    got = {(x["file"], x["line"], x["code"]) for x in r.json()}
    assert got == {(a, 7, "E0020"), (a, 8, "E0021"), (a, 9, "E0011"), (b, 3, "E0011")}


def test_check_reports_syntax_errors_in_two_pous_of_one_file(tmp_path):
    # "All errors of a file are reported, not only the first": two unrelated
    # syntax errors in two POUs are both reported.
    src = ("PROGRAM A\nVAR x : INT; END_VAR\nx := 1\nx := 2;\nEND_PROGRAM\n\n"
           "PROGRAM B\nVAR y : INT; END_VAR\nIF y > 1 THEN\n  y := 2;\nEND_PROGRAM\n")
    path = write(tmp_path, "two_syntax.st", src)
    r = gridplc("check", path, "--format", "json")
    assert r.rc == 1, r
    lines = sorted(x["line"] for x in r.json() if x["code"] == "E0001")
    assert any(ln in (3, 4) for ln in lines), r          # the missing ';' in A
    assert any(ln in (9, 10, 11) for ln in lines), r     # the unclosed IF in B


def test_check_missing_file_is_a_usage_error(tmp_path):
    r = gridplc("check", tmp_path / "nope.st")
    assert r.rc == 2, r
    assert "nope.st" in r.err


# ---------------------------------------------------------------- sim basics

def test_sim_json_prints_one_object_keyed_instance_dot_var():
    r = gridplc("sim", fx("set_types.st"), "--cycles", "3", "--interval", "10ms", "--json")
    assert r.rc == 0, r
    d = r.json()
    assert isinstance(d, dict)
    assert set(d) == {f"P.{v}" for v in ("i", "r", "b", "t", "lvl", "a", "lim", "iTwice", "rHalf", "bNot",
                                          "tPlus", "isHigh", "aSum", "width", "k")}, d


def test_sim_json_value_shapes():
    # 5 scans at 100 ms, the first at t=0: the TON has been on for 400 ms
    r = gridplc("sim", fx("json_values.st"), "--cycles", "5", "--interval", "100ms", "--json")
    assert r.rc == 0, r
    d = r.json()
    assert d["J.count"] == 5 and type(d["J.count"]) is int
    assert d["J.started"] is True
    assert d["J.ratio"] == 0.25 and isinstance(d["J.ratio"], float)
    assert d["J.label"] == "rack"
    assert d["J.stamp"] == 90000                       # TIME as milliseconds
    assert d["J.elapsed"] == 400
    assert d["J.mode"] == "RUN"                        # enum by name
    assert d["J.values"] == [1, 2, 3]                  # array as list
    assert d["J.cells"] == [{"v": 0.0, "ok": False}, {"v": 3.5, "ok": True}]   # structs as objects
    timer = d["J.timer"]                               # FB instance as object
    assert isinstance(timer, dict)
    assert timer["IN"] is True and timer["PT"] == 1000 and timer["ET"] == 400 and timer["Q"] is False


def test_sim_first_scan_is_at_t0():
    # 11 scans at 100 ms cover t = 0 .. 1000 ms: the 1 s TON is done on the last one
    d = gridplc("sim", fx("json_values.st"), "--cycles", "11", "--interval", "100ms", "--json").json()
    assert d["J.timer"]["ET"] == 1000 and d["J.timer"]["Q"] is True
    d = gridplc("sim", fx("json_values.st"), "--cycles", "10", "--interval", "100ms", "--json").json()
    assert d["J.timer"]["ET"] == 900 and d["J.timer"]["Q"] is False


def test_sim_json_is_not_mixed_with_warnings():
    # json_values.st has W0101 warnings; stdout must still be exactly one JSON object
    r = gridplc("sim", fx("json_values.st"), "--cycles", "1", "--interval", "10ms", "--json")
    assert r.rc == 0, r
    assert isinstance(r.json(), dict)


def test_sim_without_interval_and_without_configuration_is_a_usage_error():
    r = gridplc("sim", fx("set_types.st"), "--cycles", "1")
    assert r.rc == 2, r
    assert "interval" in r.err.lower(), r


@pytest.mark.parametrize("args", [["--cycles", "-1", "--interval", "10ms"],
                                  ["--cycles", "x", "--interval", "10ms"],
                                  ["--cycles", "1", "--interval", "10parsecs"],
                                  ["--cycles", "1", "--interval", "0ms"],
                                  ["--cycles", "1", "--interval", "10ms", "--watchdog", "soon"],
                                  ["--cycles", "1", "--interval", "10ms", "--set", "P.i"]],
                         ids=["negative-cycles", "cycles-not-int", "bad-unit", "zero-interval",
                              "bad-watchdog", "set-without-value"])
def test_sim_bad_options_are_usage_errors(args):
    r = gridplc("sim", fx("set_types.st"), *args)
    assert r.rc == 2, r
    assert r.err.strip(), r


@pytest.mark.parametrize("args", [[], ["bogus"], ["sim"], ["check"], ["explain"]],
                         ids=["no-command", "unknown-command", "sim-no-file", "check-no-file", "explain-no-code"])
def test_bad_command_lines_exit_2(args):
    r = gridplc(*args)
    assert r.rc == 2, r


def test_sim_compile_errors_exit_1(tmp_path):
    path = write(tmp_path, "bad.st", BAD_PROGRAM)
    r = gridplc("sim", path, "--cycles", "1", "--interval", "10ms", "--json")
    assert r.rc == 1, r
    assert "E0020" in r.err + r.out, r


def test_sim_several_files_make_one_program(tmp_path):
    lib = write(tmp_path, "lib.st", "TYPE Mode : (IDLE, RUN); END_TYPE\n"
                "FUNCTION Twice : INT\nVAR_INPUT x : INT; END_VAR\nTwice := x * 2;\nEND_FUNCTION\n")
    main = write(tmp_path, "main.st", "PROGRAM M\nVAR m : Mode := RUN; y : INT; END_VAR\n"
                 "y := Twice(y + 1);\nEND_PROGRAM\n")
    r = gridplc("sim", lib, main, "--cycles", "3", "--interval", "10ms", "--json")
    assert r.rc == 0, r
    assert r.json() == {"M.m": "RUN", "M.y": 14}


# ---------------------------------------------------------------- configuration

def test_sim_configuration_without_interval_counts_base_ticks():
    r = gridplc("sim", fx("two_tasks.st"), "--cycles", "10", "--json")
    assert r.rc == 0, r
    d = r.json()
    # keys use the instance names of the CONFIGURATION, not the POU names
    assert d == {"Main.n": 10, "Bg.m": 2}, d      # 50 ms task ran at t=0 and t=50ms


def test_sim_configuration_with_agreeing_interval():
    r = gridplc("sim", fx("two_tasks.st"), "--cycles", "10", "--interval", "10ms", "--json")
    assert r.rc == 0, r
    assert r.json() == {"Main.n": 10, "Bg.m": 2}


@pytest.mark.parametrize("interval", ["20ms", "50ms", "5ms"])
def test_sim_interval_disagreeing_with_configuration_is_exit_2(interval):
    r = gridplc("sim", fx("two_tasks.st"), "--cycles", "10", "--interval", interval, "--json")
    assert r.rc == 2, r
    assert "interval" in r.err.lower() and r.out.strip() == "", r


def test_sim_set_on_a_configuration_instance():
    r = gridplc("sim", fx("two_tasks.st"), "--cycles", "1", "--set", "Main.n=41", "--json")
    assert r.rc == 0, r
    assert r.json()["Main.n"] == 42


# ---------------------------------------------------------------- --set

def sim_set(*sets: str) -> dict:
    args = []
    for s in sets:
        args += ["--set", s]
    r = gridplc("sim", fx("set_types.st"), "--cycles", "1", "--interval", "10ms", "--json", *args)
    assert r.rc == 0, r
    return r.json()


def test_set_int():
    d = sim_set("P.i=21")
    assert d["P.i"] == 21 and d["P.iTwice"] == 42


def test_set_negative_int():
    d = sim_set("P.i=-7")
    assert d["P.i"] == -7 and d["P.iTwice"] == -14


def test_set_real():
    d = sim_set("P.r=2.5")
    assert d["P.r"] == 2.5 and d["P.rHalf"] == 1.25


@pytest.mark.parametrize("text", ["TRUE", "true"])
def test_set_bool(text):
    d = sim_set(f"P.b={text}")
    assert d["P.b"] is True and d["P.bNot"] is False


def test_set_time_literal():
    d = sim_set("P.t=T#5s")
    assert d["P.t"] == 5000 and d["P.tPlus"] == 5001


def test_set_time_plain_milliseconds():
    d = sim_set("P.t=250")
    assert d["P.t"] == 250 and d["P.tPlus"] == 251


def test_set_enum_by_name():
    d = sim_set("P.lvl=HIGH")
    assert d["P.lvl"] == "HIGH" and d["P.isHigh"] is True


def test_set_array_element():
    d = sim_set("P.a[2]=5")
    assert d["P.a"] == [0, 5, 0, 0] and d["P.aSum"] == 5


def test_set_struct_field():
    d = sim_set("P.lim.hi=3.5", "P.lim.lo=0.5")
    assert d["P.lim"] == {"lo": 0.5, "hi": 3.5} and d["P.width"] == 3.0


def test_set_several_at_once():
    d = sim_set("P.i=3", "P.b=TRUE", "P.a[4]=7", "P.a[1]=1")
    assert (d["P.iTwice"], d["P.bNot"], d["P.aSum"]) == (6, False, 8)


@pytest.mark.parametrize("path", ["P.nosuch", "Q.i", "P.lim.middle", "P.a[9]", "P.i.x"])
def test_set_bad_path_is_exit_2_and_names_the_path(path):
    r = gridplc("sim", fx("set_types.st"), "--cycles", "1", "--interval", "10ms", "--json", "--set", f"{path}=1")
    assert r.rc == 2, r
    assert path in r.err, r
    assert r.out.strip() == "", r


@pytest.mark.parametrize("item", ["P.i=abc", "P.i=99999", "P.lvl=PURPLE", "P.b=maybe", "P.t=T#5parsecs"])
def test_set_bad_value_is_exit_2(item):
    r = gridplc("sim", fx("set_types.st"), "--cycles", "1", "--interval", "10ms", "--set", item)
    assert r.rc == 2, r
    assert item.split("=")[0] in r.err, r


# ---------------------------------------------------------------- determinism

def test_sim_is_deterministic_byte_for_byte():
    args = ("sim", str(SITE_PROTECT), "--cycles", "50", "--json")
    first, second = gridplc(*args), gridplc(*args)
    assert first.rc == 0, first
    assert first.out_bytes == second.out_bytes
    args = ("sim", fx("clean.st"), "--cycles", "37", "--interval", "100ms")
    first, second = gridplc(*args), gridplc(*args)
    assert first.rc == 0, first
    assert first.out_bytes and first.out_bytes == second.out_bytes


@pytest.mark.parametrize("order", [("lib", "main"), ("main", "lib")])
def test_sim_of_several_files_is_the_same_in_every_run(tmp_path, order):
    # a fresh process has a fresh hash seed; the result must not depend on it
    files = {"lib": write(tmp_path, "lib.st", "TYPE Mode : (IDLE, RUN); END_TYPE\n"
                          "FUNCTION Twice : INT\nVAR_INPUT x : INT; END_VAR\nTwice := x * 2;\nEND_FUNCTION\n"),
             "main": write(tmp_path, "main.st", "PROGRAM M\nVAR m : Mode := RUN; y : INT; END_VAR\n"
                           "y := Twice(y + 1);\nEND_PROGRAM\n")}
    runs = [gridplc("sim", *(files[k] for k in order), "--cycles", "3", "--interval", "10ms", "--json",
                    env={"PYTHONHASHSEED": str(seed)}) for seed in range(6)]
    for r in runs:
        assert r.rc == 0, r
        assert r.out_bytes == runs[0].out_bytes, r
    assert runs[0].json() == {"M.m": "RUN", "M.y": 14}


# ---------------------------------------------------------------- faults

FAULT_RE = r"^{path}:(?P<line>\d+):(?P<col>\d+): fault: (?P<what>.*) \(scan (?P<scan>\d+)\)$"


def test_sim_runtime_fault_exit_3_with_location_and_scan():
    path = fx("div_fault.st")
    r = gridplc("sim", path, "--cycles", "5", "--interval", "10ms")
    assert r.rc == 3, r
    lines = [ln for ln in r.err.splitlines() if ": fault: " in ln]
    assert len(lines) == 1, r
    m = re.match(FAULT_RE.format(path=re.escape(path)), lines[0])
    assert m, f"fault line does not start with '{path}:line:col: fault:': {lines[0]!r}"
    assert m["line"] == "9", lines[0]                  # q := 10 / d;
    assert int(m["col"]) in (3, 8, 11), lines[0]       # the statement, or the division in it
    assert "division by zero" in m["what"]
    assert m["scan"] == "3"


def test_sim_runtime_fault_with_json_still_exits_3():
    path = fx("div_fault.st")
    r = gridplc("sim", path, "--cycles", "5", "--interval", "10ms", "--json")
    assert r.rc == 3, r
    assert re.search(FAULT_RE.format(path=re.escape(path)), r.err, re.M), r


def test_sim_fault_location_inside_a_function_and_an_fb(tmp_path):
    src = """\
FUNCTION Ratio : REAL
VAR_INPUT num : INT; den : INT; END_VAR
Ratio := INT_TO_REAL(num / den);
END_FUNCTION

FUNCTION_BLOCK Avg
VAR_INPUT total : INT; count : INT; END_VAR
VAR_OUTPUT mean : INT; END_VAR
mean := total / count;
END_FUNCTION_BLOCK

PROGRAM P
VAR
  n : INT;
  x : REAL;
  a : Avg;
  which : INT := 1;
END_VAR
n := n + 1;
IF n = 2 AND which = 1 THEN
  x := Ratio(1, 0);
END_IF;
IF n = 3 THEN
  a(total := 4, count := 0);
END_IF;
END_PROGRAM
"""
    path = write(tmp_path, "nested.st", src)
    r = gridplc("sim", path, "--cycles", "5", "--interval", "10ms")
    assert r.rc == 3, r
    assert re.search(rf"^{re.escape(path)}:3:\d+: fault: division by zero \(scan 2\)$", r.err, re.M), r
    r = gridplc("sim", path, "--cycles", "5", "--interval", "10ms", "--set", "P.which=0")
    assert r.rc == 3, r
    assert re.search(rf"^{re.escape(path)}:9:\d+: fault: division by zero \(scan 3\)$", r.err, re.M), r


def test_sim_watchdog_stops_a_runaway_loop():
    path = fx("runaway.st")
    r = gridplc("sim", path, "--cycles", "6", "--interval", "10ms", "--watchdog", "200ms", timeout=60)
    assert r.rc == 3, r
    lines = [ln for ln in r.err.splitlines() if "fault:" in ln]
    assert len(lines) == 1, r
    assert "watchdog" in lines[0], r
    assert lines[0].endswith("(scan 3)"), r
    assert re.match(rf"^{re.escape(path)}:\d+:\d+: fault: ", lines[0]), r


def _ring_model(cycles: int) -> dict:
    buf, head, sample = [0] * 8, 1, 0
    grid = [[0] * 4 for _ in range(3)]
    newest = previous = oldest = row = col = 0
    for _ in range(cycles):
        sample += 3
        buf[head - 1] = sample
        newest = buf[head - 1]
        previous = buf[(head + 6) % 8]
        oldest = buf[head % 8]
        row, col = head % 3, (head + 1) % 4
        grid[row][col] += 1
        head = head % 8 + 1
    return {"Ring.buf": buf, "Ring.head": head, "Ring.sample": sample, "Ring.newest": newest,
            "Ring.previous": previous, "Ring.oldest": oldest, "Ring.grid": grid, "Ring.row": row, "Ring.col": col}


@pytest.mark.parametrize("cycles", [1, 3, 11])
def test_sim_computed_array_indexes(cycles):
    r = gridplc("sim", fx("indexing.st"), "--cycles", cycles, "--interval", "10ms", "--json")
    assert r.rc == 0, r
    d = r.json()
    expected = _ring_model(cycles)
    flat = lambda v: [x for row in v for x in row] if v and isinstance(v[0], list) else v
    assert flat(d.pop("Ring.grid")) == flat(expected.pop("Ring.grid"))
    assert d == expected


def test_sim_computed_index_out_of_bounds_is_a_fault(tmp_path):
    path = write(tmp_path, "oob.st", "PROGRAM P\nVAR\n  i : INT := 3;\n  x : INT;\n  h : ARRAY[1..5] OF INT;\n"
                 "END_VAR\nx := h[i - 1];\ni := i + 4;\nEND_PROGRAM\n")
    r = gridplc("sim", path, "--cycles", "3", "--interval", "10ms")
    assert r.rc == 3, r
    lines = [ln for ln in r.err.splitlines() if ": fault: " in ln]
    assert len(lines) == 1, r
    # scan 1 reads h[2] (fine); scan 2 reads h[6]: a bounds fault on line 7
    assert re.match(rf"^{re.escape(path)}:7:\d+: fault: .*\(scan 2\)$", lines[0]), lines[0]
    assert "internal error" not in lines[0], lines[0]
    assert "index 6" in lines[0] and "1..5" in lines[0], lines[0]


def test_sim_configuration_globals_and_task_priorities():
    # Prod (10 ms, priority 1) runs before Cons (20 ms, priority 2) in the same tick
    r = gridplc("sim", fx("globals.st"), "--cycles", "10", "--json")
    assert r.rc == 0, r
    d = r.json()
    assert d["Prod.level"] == 20 and d["Cons.seen"] == 18 and d["Cons.alarms"] == 2, d


def test_sim_var_global_inside_a_program_runs_or_is_rejected(tmp_path):
    # check and sim must agree: either it is an error, or it runs without an internal fault
    path = write(tmp_path, "vg.st", "PROGRAM P\nVAR_GLOBAL\n  n : INT;\nEND_VAR\nn := n + 1;\nEND_PROGRAM\n")
    c = gridplc("check", path)
    s = gridplc("sim", path, "--cycles", "2", "--interval", "10ms", "--json")
    if c.rc == 1:
        assert s.rc == 1, s
    else:
        assert c.rc == 0, c
        assert s.rc == 0, s
        assert 2 in s.json().values(), s


# ---------------------------------------------------------------- --program

def test_sim_two_programs_without_choice_is_exit_2_naming_them():
    r = gridplc("sim", fx("two_programs.st"), "--cycles", "3", "--interval", "10ms", "--json")
    assert r.rc == 2, r
    assert "--program" in r.err and "Alpha" in r.err and "Beta" in r.err, r
    assert r.out.strip() == ""


@pytest.mark.parametrize("name, expected", [("Alpha", {"Alpha.a": 3}), ("Beta", {"Beta.b": 6}),
                                            ("beta", {"Beta.b": 6})])
def test_sim_program_choice(name, expected):
    r = gridplc("sim", fx("two_programs.st"), "--program", name, "--cycles", "3", "--interval", "10ms", "--json")
    assert r.rc == 0, r
    assert r.json() == expected


def test_sim_program_that_does_not_exist_is_exit_2():
    r = gridplc("sim", fx("two_programs.st"), "--program", "Gamma", "--cycles", "3", "--interval", "10ms")
    assert r.rc == 2, r
    assert "Gamma" in r.err, r


# ---------------------------------------------------------------- the benchmark site

def test_sim_site_protect_50_cycles():
    r = gridplc("sim", str(SITE_PROTECT), "--cycles", "50", "--json")
    assert r.rc == 0, r
    d = r.json()
    for key in ("Main.dispatch", "Main.racks", "Main.scan", "Main.online", "Main.available"):
        assert key in d, sorted(d)
    assert d["Main.scan"] == 50
    assert isinstance(d["Main.dispatch"], float)
    racks = d["Main.racks"]
    assert isinstance(racks, list) and len(racks) == 8
    for rack in racks:
        assert isinstance(rack, dict)
        assert rack["state"] in {"OFFLINE", "PRECHARGE", "ONLINE", "DERATED", "TRIPPED"}, rack["state"]


def test_sim_battery_guard_runs():
    r = gridplc("sim", str(BATTERY_GUARD), "--cycles", "20", "--json")
    assert r.rc == 0, r
    d = r.json()
    assert d["Main.scan"] == 20
    assert d["Main.mode"] in {"IDLE", "CHARGING", "DISCHARGING", "FAULT"}
    assert len(d["Main.strings"]) == 16


# ---------------------------------------------------------------- compile

def test_compile_emit_python_prints_python():
    r = gridplc("compile", fx("set_types.st"), "--emit-python")
    assert r.rc == 0, r
    tree = ast.parse(r.out)                      # it is Python
    assert any(isinstance(n, ast.ClassDef) for n in tree.body)
    assert "iTwice" in r.out


def test_compile_emit_python_is_deterministic():
    a = gridplc("compile", str(SITE_PROTECT), "--emit-python")
    b = gridplc("compile", str(SITE_PROTECT), "--emit-python")
    assert a.rc == 0, a
    assert a.out_bytes == b.out_bytes
    ast.parse(a.out)


def test_compile_with_errors_exits_1(tmp_path):
    path = write(tmp_path, "bad.st", BAD_PROGRAM)
    r = gridplc("compile", path, "--emit-python")
    assert r.rc == 1, r
    assert "E0020" in r.out + r.err
    assert "class " not in r.out


# ---------------------------------------------------------------- explain

@pytest.mark.parametrize("code", list(CODES))
def test_explain_every_code(code):
    r = gridplc("explain", code)
    assert r.rc == 0, r
    assert r.out.startswith(f"{code}: {CODES[code].title}"), r
    assert CODES[code].page.splitlines()[0] in r.out


def test_explain_unknown_code_is_exit_2():
    r = gridplc("explain", "E9999")
    assert r.rc == 2, r
    assert "E9999" in r.err


def test_console_script_is_installed():
    script = next((p for p in (REPO / ".venv" / "bin" / "gridplc", Path("/work/main/.venv/bin/gridplc"))
                   if p.exists()), None)
    exe = shutil.which("gridplc") or str(script)
    cp = subprocess.run([exe, "explain", "E0001"], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp
    assert cp.stdout.startswith("E0001: syntax error")


# ---------------------------------------------------------------- never a traceback

MALFORMED = {
    "empty": "",
    "only_comment": "(* nothing *)\n",
    "unterminated_comment": "PROGRAM P\n(* open\nEND_PROGRAM\n",
    "unterminated_string": "PROGRAM P\nVAR s : STRING; END_VAR\ns := 'abc;\nEND_PROGRAM\n",
    "stray_close": "*) PROGRAM P END_PROGRAM",
    "garbage": "\x00\x01\x02 ?? @@ ## $$\n",
    "keywords_only": "IF THEN ELSE END_IF CASE OF FOR TO BY DO END_FOR\n",
    "deep_parens": "PROGRAM P\nVAR x : INT; END_VAR\nx := " + "(" * 500 + "1" + ")" * 500 + ";\nEND_PROGRAM\n",
    "deep_nesting": "PROGRAM P\nVAR x : INT; END_VAR\n" + "IF TRUE THEN\n" * 200 + "x := 1;\n"
                    + "END_IF;\n" * 200 + "END_PROGRAM\n",
    "huge_literal": "PROGRAM P\nVAR x : LINT; END_VAR\nx := 99999999999999999999999999999999;\nEND_PROGRAM\n",
    "function_only": "FUNCTION F : INT\nF := 1;\nEND_FUNCTION\n",
    "mutual_recursion_with_caller": (
        "FUNCTION F : INT\nVAR_INPUT n : INT; END_VAR\nF := G(n);\nEND_FUNCTION\n"
        "FUNCTION G : INT\nVAR_INPUT n : INT; END_VAR\nG := F(n);\nEND_FUNCTION\n"
        "PROGRAM P\nVAR x : INT; END_VAR\nx := F(1);\nEND_PROGRAM\n"),
    "long_sum": "PROGRAM P\nVAR x : DINT; END_VAR\nx := 1" + " + 1" * 1000 + ";\nEND_PROGRAM\n",
    "deep_expression": "PROGRAM P\nVAR x : INT; END_VAR\nx := " + "-(" * 3000 + "1" + ")" * 3000 + ";\nEND_PROGRAM\n",
    "bad_configuration": "CONFIGURATION C\nRESOURCE R ON PLC\nTASK T(INTERVAL := 5);\n"
                         "PROGRAM I WITH T : Nope;\nEND_RESOURCE\nEND_CONFIGURATION\n",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_input_never_gives_a_traceback(tmp_path, name):
    path = write(tmp_path, f"{name}.st", MALFORMED[name])
    for args in (("check", path), ("check", path, "--format", "json"), ("compile", path, "--emit-python"),
                 ("sim", path, "--cycles", "2", "--interval", "10ms", "--json")):
        r = gridplc(*args)                      # asserts no traceback
        assert r.rc in (0, 1, 2, 3), r
        if args[0] == "check":
            assert r.rc in (0, 1), r


def test_binary_file_never_gives_a_traceback(tmp_path):
    p = tmp_path / "binary.st"
    p.write_bytes(bytes(range(256)) * 4)
    for args in (("check", p), ("sim", p, "--cycles", "1", "--interval", "10ms")):
        r = gridplc(*args)
        assert r.rc in (1, 2), r
