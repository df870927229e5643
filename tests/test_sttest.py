"""`gridplc test`: ST unit tests (runtime/sttest.py) through the real CLI."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runtime.cli import main

HERE = Path(__file__).parent
PASS = HERE / "st_tests" / "pass"
FAIL = HERE / "st_tests" / "fail"
BROKEN = HERE / "st_tests" / "broken"


def gridplc(capsys, *args):
    code = main(["test", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _without_time(text: str) -> str:
    return re.sub(r" in \d+\.\d\ds$", " in T", text, flags=re.M)


def test_passing_directory(capsys):
    code, out, err = gridplc(capsys, PASS)
    assert code == 0, out + err
    lines = out.splitlines()
    # the tests of test_guard.st use the library in lib_guard.st: one project;
    # file order, then source order; {attribute 'test'} and any-case TEST_ both count
    assert lines[:4] == [f"{PASS / 'test_guard.st'}::{n} PASSED" for n in
                         ("TEST_TripsAfterDelay", "TEST_FreshInstanceAndClock", "DeratesBetween45And55",
                          "test_lower_case_name")]
    assert re.fullmatch(r"4 passed, 0 failed in \d+\.\d\ds", lines[-1])


def test_failures_name_the_assertion_its_message_and_values(capsys):
    code, out, _ = gridplc(capsys, FAIL, "--timeout", "300ms")
    assert code == 1
    f = str(FAIL / "cases.st")
    assert f"{f}::TEST_Passes PASSED" in out
    assert f"{f}::TEST_EqFails FAILED" in out
    assert (f"{f}:15:1: ASSERT_EQ(5, n, 'five edges') failed: five edges\n"
            "    expected: 5\n"
            "    actual:   4\n") in out
    assert "never reached" not in out                     # the first failure stops the test
    assert (f"{f}:22:1: ASSERT_NEAR(3.6, v, 0.01, 'cell voltage') failed: cell voltage\n"
            "    expected: 3.6 +/- 0.01\n"
            "    actual:   3.65 (off by 0.0500001)\n") in out
    assert f"{f}:26:1: ASSERT_TRUE(1 > 2) failed\n    expected: TRUE\n    actual:   FALSE\n" in out
    assert "expected: Mode#IDLE\n    actual:   Mode#RUN" in out
    assert "expected: T#2s\n    actual:   T#1m1s500ms" in out
    assert "expected: 'its'\n    actual:   'it$'s'" in out
    assert out.splitlines()[-1].startswith("1 passed, 6 failed, 3 errors in ")


def test_runtime_faults_are_errors_with_their_location(capsys):
    code, out, _ = gridplc(capsys, FAIL, "--timeout", "300ms", "-k", "test_div")
    assert code == 1
    f = str(FAIL / "cases.st")
    assert f"{f}::TEST_DivisionByZero ERROR" in out
    assert f"{f}:6:1: fault: division by zero\n    called from {f}:46:1\n" in out
    code, out, _ = gridplc(capsys, FAIL, "-k", "outofbounds")
    assert f"{f}:51:3: fault: index 4 is outside the array bounds 1..3" in out


def test_a_runaway_loop_is_stopped_by_the_timeout(capsys):
    code, out, _ = gridplc(capsys, FAIL, "--timeout", "100ms", "-k", "RunsForever")
    assert code == 1
    assert f"{FAIL / 'cases.st'}:56:1: fault: the test ran longer than 0.1 s (stopped in a loop)" in out


def test_k_filters_and_q_leaves_out_passed_lines(capsys):
    code, out, _ = gridplc(capsys, PASS, "-k", "FRESH", "-q")
    assert code == 0
    assert out.splitlines() == [out.splitlines()[-1]] and out.startswith("1 passed, 0 failed")
    code, _, err = gridplc(capsys, PASS, "-k", "nothing-matches")
    assert code == 2 and "no tests matching -k 'nothing-matches'" in err


def test_junit_report(capsys, tmp_path):
    report = tmp_path / "r.xml"
    code, _, _ = gridplc(capsys, FAIL, "--junit", report, "--timeout", "100ms")
    assert code == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("10", "6", "3")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["TEST_Passes"].find("failure") is None and cases["TEST_Passes"].find("error") is None
    fail = cases["TEST_EqFails"].find("failure")
    assert fail.get("message").endswith("ASSERT_EQ(5, n, 'five edges') failed: five edges")
    assert "actual:   4" in fail.text
    assert cases["TEST_DivisionByZero"].find("error").get("message").endswith("fault: division by zero")
    assert cases["TEST_EqFails"].get("classname") == str(FAIL / "cases.st")


def test_output_is_deterministic(capsys):
    runs = [_without_time(gridplc(capsys, FAIL, PASS, "--timeout", "100ms")[1]) for _ in range(2)]
    assert runs[0] == runs[1]


def test_compile_errors_exit_2_like_check(capsys):
    code, out, err = gridplc(capsys, BROKEN)
    assert code == 2
    assert f"{BROKEN / 'bad.st'}:3:6: error[E0021]:" in err
    assert "Traceback" not in err and "PASSED" not in out


def test_usage_errors_exit_2(capsys, tmp_path):
    code, _, err = gridplc(capsys, tmp_path / "missing")
    assert code == 2 and "no such file or directory" in err
    (tmp_path / "lib.st").write_text("FUNCTION_BLOCK B\nVAR x : INT; END_VAR\nx := 1;\nEND_FUNCTION_BLOCK\n")
    code, _, err = gridplc(capsys, tmp_path)
    assert code == 2 and "no tests in 1 file(s)" in err
    code, _, err = gridplc(capsys, PASS, "--timeout", "soon")
    assert code == 2 and "--timeout" in err


def test_default_path_is_the_current_directory(capsys, monkeypatch):
    monkeypatch.chdir(PASS)
    code, out, _ = gridplc(capsys)
    assert code == 0
    assert out.startswith("test_guard.st::TEST_TripsAfterDelay PASSED")


def test_scan_pragma_sets_the_advance_scans_interval(capsys, tmp_path):
    (tmp_path / "t.st").write_text(
        "{attribute 'scan' := '250ms'}\nPROGRAM TEST_Scan\nVAR t : TON; END_VAR\n"
        "t(IN := TRUE, PT := T#1s);\nADVANCE_SCANS(3);\nt(IN := TRUE, PT := T#1s);\n"
        "ASSERT_EQ(T#750ms, t.ET);\nEND_PROGRAM\n"
        "PROGRAM TEST_DefaultScan\nVAR t : TON; END_VAR\n"
        "t(IN := TRUE, PT := T#1s);\nADVANCE_SCANS(3);\nt(IN := TRUE, PT := T#1s);\n"
        "ASSERT_EQ(T#300ms, t.ET);\nEND_PROGRAM\n")
    code, out, _ = gridplc(capsys, tmp_path)
    assert code == 0, out


@pytest.mark.parametrize("body", [
    "ADVANCE(T#1s);",
    "ASSERT_TRUE(TRUE);",
])
def test_production_code_cannot_call_test_functions(capsys, tmp_path, body):
    (tmp_path / "p.st").write_text(f"PROGRAM Main\n{body}\nEND_PROGRAM\nPROGRAM TEST_X\nASSERT_TRUE(TRUE);\nEND_PROGRAM\n")
    code, _, err = gridplc(capsys, tmp_path)
    assert code == 2 and "error[E0093]" in err
