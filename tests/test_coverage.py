"""Coverage: instrumented code (plc_lang/instrument.py), the data file and
its reports (runtime/coverage.py), `--coverage` on `gridplc test` and
`gridplc sim --scenario`, and `gridplc coverage`."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from plc_lang import rt_support
from plc_lang.driver import compile_project, read_sources
from plc_lang.source import SourceFile
from runtime import coverage as cov
from runtime.cli import main
from runtime.engine import Engine, EngineError

HERE = Path(__file__).parent
REPO = HERE.parent
GOLDEN = HERE / "golden"
SITE_PROTECT = Path("/work/shared/bench/site_protect.st")
UPDATE = os.environ.get("GRIDPLC_UPDATE_GOLDEN") == "1"

PROBE = """\
PROGRAM Main
VAR
  n : INT; i : INT; k : INT; hi : INT; s : INT; total : INT; after : INT;
END_VAR
n := n + 1;
IF n > 3 THEN
  s := 1;
ELSIF n = 2 THEN
  s := 2;
END_IF;
CASE n OF
  1: k := 10;
  2..3: k := 20;
  9: k := 90;
END_CASE;
hi := n - 2;
FOR i := 1 TO hi DO
  IF i = 2 THEN CONTINUE; END_IF;
  total := total + i;
END_FOR;
WHILE k > 15 DO k := k - 10; END_WHILE;
REPEAT k := k + 1; UNTIL k > 0 END_REPEAT;
IF n = 4 THEN RETURN; END_IF;
after := after + 1;
k := 0;
END_PROGRAM
"""


def _compile(src: str, path: str = "probe.st", coverage: bool = True):
    r = compile_project([SourceFile(path, src)], coverage=coverage)
    assert r.ok, [d.message for d in r.diagnostics if d.is_error]
    return r.program


def _run(program, cycles: int, interval_ns: int = 10_000_000):
    e = Engine(program, interval_ns=interval_ns)
    try:
        return e.run(cycles), e.snapshot()
    finally:
        e.close()


def _hits(program) -> dict:
    """key -> hits (statements by line:col, branches by their key)."""
    m = program.coverage
    return {p.key: m.hits(p) for p in m.points}


def _labels(program) -> dict:
    return {p.key: p.never for p in program.coverage.points if p.kind == "branch"}


def test_statement_and_branch_counts_are_exact():
    prog = _compile(PROBE)
    _run(prog, 5)                          # n = 1..5
    h = _hits(prog)
    assert h["5:1"] == 5                                            # n := n + 1
    assert (h["6:1/if1"], h["6:1/if2"], h["6:1/none"]) == (2, 1, 2)   # n > 3 | n = 2 | neither
    assert (h["11:1/case1"], h["11:1/case2"], h["11:1/case3"], h["11:1/none"]) == (1, 2, 0, 2)
    assert (h["17:1/entered"], h["17:1/skipped"]) == (3, 2)        # hi = n - 2 > 0 from n = 3
    assert h["19:3"] == 4                                          # not after CONTINUE (i = 2)
    assert h["18:3/if1"] == 2
    assert (h["21:1/entered"], h["21:1/skipped"]) == (2, 3)        # k = 20 at n = 2, 3
    assert not any(k.startswith("22:1/") for k in h)               # a REPEAT body always runs
    assert h["23:1/if1"] == 1
    assert (h["24:1"], h["25:1"]) == (4, 4)                       # not after RETURN at n = 4


def test_branch_descriptions_are_readable():
    labels = _labels(_compile(PROBE))
    assert labels["6:1/if2"] == "IF arm 2 (ELSIF n = 2) never taken"
    assert labels["6:1/none"] == "IF implicit ELSE (every condition FALSE) never taken"
    assert labels["11:1/case2"] == "CASE arm '2..3' never taken"
    assert labels["11:1/none"] == "CASE implicit ELSE (no label matched) never taken"
    assert labels["17:1/entered"] == "FOR loop never entered"
    assert labels["21:1/skipped"] == "WHILE loop never skipped (it always ran at least once)"
    guard = _compile((HERE / "st_tests" / "pass" / "lib_guard.st").read_text(), "lib_guard.st")
    labels = _labels(guard)
    assert labels["25:1/if2"] == "IF arm 2 (ELSIF t > 45.0 AND state = NORMAL) never taken"
    assert labels["33:1/case3"] == "CASE arm 'TRIPPED' never taken"
    # a CASE listing every value of its enumeration has no implicit ELSE to miss
    assert "33:1/none" not in labels


def test_else_arm_is_marked_on_its_else_line():
    prog = _compile("PROGRAM P\nVAR x : INT; END_VAR\nIF x > 0 THEN\n  x := 1;\n(* else *)\nELSE\n\n  x := 2;\nEND_IF;\nEND_PROGRAM\n")
    pt = next(p for p in prog.coverage.points if p.key == "3:1/else")
    assert (pt.line, pt.label) == (6, "IF arm 2 (ELSE)")


def test_a_statement_after_a_fault_is_not_counted():
    prog = _compile("PROGRAM P\nVAR a : INT; b : INT; r : INT; after : INT; END_VAR\n"
                    "a := 1;\nr := a / b;\nafter := 1;\nEND_PROGRAM\n")
    fault, _ = _run(prog, 1)
    assert fault is not None and "division by zero" in fault.what
    h = _hits(prog)
    assert (h["3:1"], h["4:1"], h["5:1"]) == (1, 1, 0)


def test_a_run_of_plain_statements_shares_one_counter(monkeypatch):
    monkeypatch.setattr(rt_support, "HAVE_F32_EXT", True)     # the struct fallback can raise on REAL overflow
    prog = _compile("PROGRAM P\nVAR a : INT; b : REAL; c : BOOL; END_VAR\n"
                    "a := a + 1;\nb := b * 2.0 + 1.0;\nc := a > 3 AND b < 10.0;\nEND_PROGRAM\n")
    assert prog.source.count("cov__[") == 1
    _run(prog, 3)
    assert set(_hits(prog).values()) == {3}


FLOW = """\
FUNCTION Scale : INT
VAR_INPUT x : INT; END_VAR
VAR_OUTPUT clipped : BOOL; END_VAR
IF x > 100 THEN
  clipped := TRUE;
  Scale := 100;
  RETURN;
END_IF;
Scale := x * 2;
END_FUNCTION

PROGRAM Main
VAR
  n : INT; i : INT; j : INT; k : INT; st : INT := 3; acc : DINT; c : BOOL; arr : ARRAY[0..9] OF INT;
END_VAR
n := n + 1;
k := 0;
REPEAT
  k := k + 1;
  IF k MOD 2 = 0 THEN CONTINUE; END_IF;
  IF k > 7 THEN EXIT; END_IF;
  acc := acc + k;
UNTIL k >= n MOD 11 END_REPEAT;
FOR i := n MOD 5 TO 0 BY -1 DO
  IF i = 1 THEN CONTINUE; END_IF;
  acc := acc + i;
END_FOR;
FOR i := 0 TO 9 BY st DO
  FOR j := 0 TO i DO
    IF j = 2 THEN EXIT; END_IF;
    arr[i] := arr[i] + j;
  END_FOR;
  IF i = 6 THEN CONTINUE; END_IF;
  acc := acc + arr[i];
END_FOR;
CASE n MOD 3 OF
  0:
ELSE
  acc := acc + Scale(n * 10, clipped => c);
END_CASE;
WHILE k > 0 DO
  k := k - 3;
  IF k = 2 THEN EXIT; END_IF;
END_WHILE;
END_PROGRAM
"""


def test_a_for_body_nothing_leaves_early_is_counted_without_counters(monkeypatch):
    monkeypatch.setattr(rt_support, "HAVE_F32_EXT", True)
    prog = _compile("PROGRAM P\nVAR i : INT; a : ARRAY[1..5] OF REAL; s : REAL; END_VAR\n"
                    "FOR i := 1 TO 5 DO\n  a[i] := a[i] + 1.0;\n  s := s + a[i];\nEND_FOR;\n"
                    "FOR i := 1 TO 5 DO\n  s := s / a[i];\nEND_FOR;\nEND_PROGRAM\n")
    body = prog.source[prog.source.index("for i in range(1, 5 + 1):"):]
    first_loop = body[:body.index("else:")]
    assert "cov__" not in first_loop          # a[i] is in bounds, nothing faults: no counter per trip
    _run(prog, 3)
    h = _hits(prog)
    assert (h["3:1"], h["4:3"], h["5:3"], h["7:1"], h["8:3"]) == (3, 15, 15, 3, 15)


def _programs_to_compare():
    files = sorted((HERE / "fixtures").glob("*.st")) + sorted((HERE / "st_cases").glob("*.st")) + \
        sorted((REPO / "programs" / "examples").glob("*.st"))
    out = [[str(f)] for f in files if f.name != "runaway.st"]     # runaway: a 1 s watchdog each way
    if SITE_PROTECT.exists():
        out.append([str(SITE_PROTECT)])
    # fixtures of compile errors have nothing to run
    return [f for f in out if compile_project(read_sources(f)).ok]


def _sources(files):
    return [SourceFile("flow.st", FLOW)] if files == ["flow"] else read_sources(files)


@pytest.mark.parametrize("files", _programs_to_compare() + [["flow"]], ids=lambda f: os.path.basename(f[0]))
def test_instrumented_programs_behave_exactly_like_plain_ones(files):
    plain = compile_project(_sources(files))
    counted = compile_project(_sources(files), coverage=True)
    results = []
    for prog in (plain.program, counted.program):
        try:
            e = Engine(prog, interval_ns=10_000_000)
        except EngineError:
            first = next(k for k, v in prog.project.pous.items() if v.kind == "PROGRAM")
            e = Engine(prog, program_name=first, interval_ns=10_000_000)
        try:
            fault = e.run(40)
            results.append((str(fault), e.snapshot()))
        finally:
            e.close()
    assert results[0] == results[1]
    assert "cov__" not in plain.program.source


def test_plain_code_is_unchanged_by_the_option():
    src = [SourceFile("golden/codegen_small.st", (GOLDEN / "codegen_small.st").read_text())]
    assert compile_project(src).program.source == compile_project(src, coverage=False).program.source


def test_instrumented_code_golden(monkeypatch):
    monkeypatch.setattr(rt_support, "HAVE_F32_EXT", True)
    got = _compile(PROBE, "golden/coverage_probe.st").source
    golden = GOLDEN / "coverage_probe.py.txt"
    if UPDATE or not golden.exists():
        golden.write_text(got)
        if not UPDATE:
            pytest.fail(f"created {golden.name}; review it and commit")
    assert got == golden.read_text(), "coverage_probe.py.txt differs; review, then GRIDPLC_UPDATE_GOLDEN=1"


def test_tests_themselves_are_not_instrumented():
    prog = _compile("FUNCTION_BLOCK B\nVAR_OUTPUT q : BOOL; END_VAR\nq := TRUE;\nEND_FUNCTION_BLOCK\n"
                    "PROGRAM TEST_B\nVAR b : B; END_VAR\nb();\nASSERT_TRUE(b.q);\nEND_PROGRAM\n")
    assert {p.line for p in prog.coverage.points} == {3}


# ---------------------------------------------------------------- the data file
def _data(cycles: int, src: str = PROBE, path: str = "probe.st") -> dict:
    prog = _compile(src, path)
    _run(prog, cycles)
    return cov.from_programs([prog])


def test_merge_adds_hits_and_the_file_is_byte_identical_whatever_the_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "probe.st").write_text(PROBE)
    a, b = _data(2), _data(5)
    cov.accumulate("ab.json", a)
    total = cov.accumulate("ab.json", b)
    cov.accumulate("ba.json", b)
    cov.accumulate("ba.json", a)
    assert (tmp_path / "ab.json").read_bytes() == (tmp_path / "ba.json").read_bytes()
    assert total["files"]["probe.st"]["statements"]["5:1"] == 7
    assert total["files"]["probe.st"]["branches"]["6:1/if1"]["hits"] == 2
    assert json.loads((tmp_path / "ab.json").read_text())["format"] == cov.FORMAT


def test_changed_source_drops_the_old_counts(tmp_path):
    cov.accumulate(str(tmp_path / "c.json"), _data(5))
    changed = PROBE.replace("n := n + 1;", "n := n + 2;")
    notes: list[str] = []
    total = cov.accumulate(str(tmp_path / "c.json"), _data(1, changed), notes)
    assert total["files"][cov.norm_path("probe.st")]["statements"]["5:1"] == 1
    assert notes and "changed" in notes[0]


def test_processes_adding_at_once_lose_nothing(tmp_path):
    one = _data(1)
    path = str(tmp_path / "par.json")
    threads = [threading.Thread(target=cov.accumulate, args=(path, one)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cov.load(path)["files"][cov.norm_path("probe.st")]["statements"]["5:1"] == 8


def test_a_damaged_data_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["coverage", "--coverage-file", str(bad)]) == 2
    assert "not a coverage data file" in capsys.readouterr().err


# ---------------------------------------------------------------- commands
SCENARIO = REPO / "tests" / "scenarios" / "overtemp.toml"


def test_scenarios_and_tests_accumulate_into_one_file_and_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sim", "--scenario", str(SCENARIO), "--coverage", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    guard = cov.norm_path(str(REPO / "tests" / "scenarios" / "guard.st"))
    assert "coverage, all runs in .gridplc-coverage.json:" in out and guard in out
    assert main(["test", str(HERE / "st_tests" / "pass"), "--coverage", "-q"]) == 0
    capsys.readouterr()
    data = cov.load(".gridplc-coverage.json")
    lib = cov.norm_path(str(HERE / "st_tests" / "pass" / "lib_guard.st"))
    assert set(data["files"]) == {guard, lib}
    assert data["files"][guard]["statements"]["14:1"] == 301     # 30 s at 100 ms, both ends

    assert main(["coverage", "--show-missing"]) == 0
    out = capsys.readouterr().out
    assert ">>    19       0 |   trip := FALSE;" in out
    assert f"{guard}:18 IF arm 2 (ELSIF resetCmd AND tMax < 50.0) never taken" in out

    assert main(["coverage", "--html", "html"]) == 0
    assert main(["coverage", "--html", "html2"]) == 0
    capsys.readouterr()
    for p in (tmp_path / "html").iterdir():
        assert p.read_bytes() == (tmp_path / "html2" / p.name).read_bytes()
    pages = sorted(p.name for p in (tmp_path / "html").iterdir())
    assert "index.html" in pages and len(pages) == 3
    page = next((tmp_path / "html").glob("*guard.st.html")).read_text()
    assert '<tr id="L19" class="miss">' in page
    assert "IF arm 2 (ELSIF resetCmd AND tMax &lt; 50.0) never taken" in page

    assert main(["coverage", "--erase"]) == 0
    assert not (tmp_path / ".gridplc-coverage.json").exists()
    assert main(["coverage"]) == 2


def test_parallel_scenarios_give_the_same_data_as_serial(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "again.toml"
    other.write_text(SCENARIO.read_text().replace('"guard.st"', f'"{REPO / "tests" / "scenarios" / "guard.st"}"'))
    args = ["sim", "--scenario", str(SCENARIO), str(other), "--coverage"]
    assert main(args + ["--jobs", "2", "--coverage-file", "par.json"]) == 0
    assert main(args + ["--jobs", "1", "--coverage-file", "ser.json"]) == 0
    capsys.readouterr()
    assert (tmp_path / "par.json").read_bytes() == (tmp_path / "ser.json").read_bytes()
    hits = json.loads((tmp_path / "par.json").read_text())["files"]
    assert list(hits.values())[0]["statements"]["14:1"] == 602


def test_coverage_needs_a_scenario_on_plain_sim(capsys):
    assert main(["sim", str(HERE / "fixtures" / "clean.st"), "--coverage"]) == 2
    assert "--coverage needs --scenario" in capsys.readouterr().err
