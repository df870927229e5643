"""Scenario files on the virtual clock: trajectories, faults, actions,
expectations, reports, traces, and byte-identical reruns."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runtime.scenario import ScenarioError, load_scenario, run_scenario

HERE = Path(__file__).parent
ROOT = HERE.parent
SC = HERE / "scenarios"


def _write(tmp_path, body: str) -> Path:
    (tmp_path / "guard.st").write_text((SC / "guard.st").read_text())
    p = tmp_path / "s.toml"
    p.write_text('[scenario]\nname = "t"\nsources = ["guard.st"]\ninterval = "100ms"\n' + body)
    return p


def test_the_reference_scenario_passes():
    r = run_scenario(load_scenario(str(SC / "overtemp.toml")))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]
    assert r.scans == 301


def test_a_failing_expectation_names_scan_time_and_values(tmp_path):
    p = _write(tmp_path, 'duration = "20s"\n[[input]]\ntag = "Main.tMax"\nkind = "step"\nat = "3s"\nbefore = 25.0\n'
                             'after = 50.0\n[[expect]]\nalways = "Main.derate >= 1.0"\n')
    r = run_scenario(load_scenario(str(p)))
    assert not r.passed
    x = r.expects[0]
    assert x.fail_scan == 31 and x.fail_t_ns == 3_000_000_000       # the first scan at t >= 3 s
    assert list(x.fail_values) == ["Main.derate"]
    assert abs(x.fail_values["Main.derate"] - 10 / 15) < 1e-6        # (60 - 50) / 15


def test_within_fails_when_the_reaction_is_too_slow(tmp_path):
    p = _write(tmp_path, 'duration = "10s"\n[[input]]\ntag = "Main.tMax"\nkind = "step"\nat = "2s"\nbefore = 25.0\n'
               'after = 60.0\n[[expect]]\nwithin = "300ms"\nafter = "Main.tMax > 55.0"\nexpect = "Main.trip"\n')
    r = run_scenario(load_scenario(str(p)))
    x = r.expects[0]
    assert not x.ok and x.fail_t_ns == 2_400_000_000                  # the first scan past the 300 ms deadline


@pytest.mark.parametrize("fault,check", [
    ('kind = "stuck"', lambda vals: vals[40] == vals[30] and vals[60] != vals[40]),
    ('kind = "offset"\nvalue = 10.0', lambda vals: abs(vals[40] - 39.0) < 1e-3),   # the ramp's 29.0, plus 10
])
def test_faults_change_what_the_program_sees(tmp_path, fault, check):
    p = _write(tmp_path, 'duration = "10s"\n[[input]]\ntag = "Main.tMax"\nkind = "ramp"\nfrom = "0s"\nto = "10s"\n'
               f'start = 25.0\nend = 35.0\n[[fault]]\ntag = "Main.tMax"\nfrom = "3s"\nto = "5s"\n{fault}\n'
               '[[expect]]\nalways = "TRUE"\n')
    r = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax"])
    vals = [row[1][0] for row in r.trace]
    assert abs(vals[20] - 27.0) < 1e-4                                  # before the fault, the ramp
    assert check(vals)
    assert abs(vals[60] - 31.0) < 1e-4                                  # after it, the ramp again


def test_drift_grows_with_time_since_the_fault_began(tmp_path):
    p = _write(tmp_path, 'duration = "10s"\n[[input]]\ntag = "Main.tMax"\nkind = "constant"\nvalue = 30.0\n'
               '[[fault]]\ntag = "Main.tMax"\nkind = "drift"\nrate = 2.0\nfrom = "2s"\nto = "6s"\n'
               '[[expect]]\nalways = "TRUE"\n')
    r = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax"])
    vals = [row[1][0] for row in r.trace]
    assert vals[10] == 30.0 and vals[20] == 30.0
    assert abs(vals[40] - 34.0) < 1e-4 and vals[70] == 30.0


def test_noise_and_drops_are_deterministic_for_a_seed(tmp_path):
    body = ('duration = "20s"\nseed = 7\n[[input]]\ntag = "Main.tMax"\nkind = "noise"\nmean = 30.0\nsigma = 5.0\n'
            '[[fault]]\ntag = "Main.tMax"\nkind = "drop"\nprobability = 0.5\nfrom = "5s"\nto = "15s"\n'
            '[[expect]]\nalways = "TRUE"\n')
    p = _write(tmp_path, body)
    a = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax", "Main.derate"]).trace
    b = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax", "Main.derate"]).trace
    assert a == b
    vals = [row[1][0] for row in a]
    assert len(set(vals[:50])) > 40                                     # noise varies
    held = sum(vals[i] == vals[i - 1] for i in range(51, 150))
    assert 25 < held < 75                                               # about half the frames dropped


def test_table_sine_and_csv_trajectories(tmp_path):
    (tmp_path / "t.csv").write_text("t,value\n0,20\n10,40\n")
    p = _write(tmp_path, 'duration = "10s"\n'
               '[[input]]\ntag = "Main.tMax"\nkind = "csv"\nfile = "t.csv"\n'
               '[[input]]\ntag = "Main.request"\nkind = "table"\npoints = [["0s", 0.0], ["2s", 100.0], ["4s", 50.0]]\n'
               '[[input]]\ntag = "Main.limit"\nkind = "sine"\namplitude = 10.0\noffset = 100.0\nperiod = "4s"\n'
               '[[expect]]\nalways = "TRUE"\n')
    r = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax", "Main.request", "Main.limit"])
    row = {round(t / 1e9, 1): v for t, v in r.trace}
    assert abs(row[5.0][0] - 30.0) < 1e-4
    assert abs(row[1.0][1] - 50.0) < 1e-4 and abs(row[3.0][1] - 75.0) < 1e-4 and row[8.0][1] == 50.0
    assert abs(row[1.0][2] - 110.0) < 1e-3 and abs(row[3.0][2] - 90.0) < 1e-3


def test_scenario_file_errors_are_all_reported_with_lines(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[scenario]\nsources = ["nope.st"]\n\n[[input]]\ntag = "Main.x"\nkind = "wobble"\n\n'
                 '[[expect]]\nsometimes = "Main.x"\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(p))
    msgs = e.value.problems
    assert any(f"{p}:2: scenario.sources: no such file" in m for m in msgs), msgs
    assert any("scenario.duration: missing" in m for m in msgs), msgs
    assert any(f"{p}:6: input[0].kind:" in m and "wobble" in m for m in msgs), msgs
    assert any("expect[0]" in m for m in msgs), msgs


def test_unknown_tags_in_expectations_are_refused_before_running(tmp_path):
    p = _write(tmp_path, 'duration = "1s"\n[[expect]]\nalways = "Main.pCmmd < 1.0"\n[[expect]]\nnever = "pCmd"\n')
    with pytest.raises(ScenarioError) as e:
        run_scenario(load_scenario(str(p)))
    text = str(e.value)
    assert "pCmmd" in text and "instance" in text


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "runtime.cli", "sim", "--scenario", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_report_exit_codes_junit_and_identical_reruns(tmp_path):
    bad = _write(tmp_path, 'duration = "5s"\n[[expect]]\nat = "1s"\nexpect = "Main.trip"\n')
    junit = tmp_path / "r.xml"
    r = _cli(str(SC / "overtemp.toml"), str(bad), "--junit", str(junit), "--trace", "Main.tMax,Main.trip",
             "--trace-dir", str(tmp_path / "tr"))
    assert r.returncode == 1, r.stderr
    assert "PASS over-temperature derate" in r.stdout and "FAIL t" in r.stdout
    assert "first failed at scan 11 (t=1.000 s): Main.trip = false" in r.stdout
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "7" and suite.get("failures") == "1"
    csv1 = (tmp_path / "tr" / "overtemp.csv").read_bytes()
    vcd1 = (tmp_path / "tr" / "overtemp.vcd").read_bytes()
    r2 = _cli(str(SC / "overtemp.toml"), str(bad), "--trace", "Main.tMax,Main.trip", "--trace-dir", str(tmp_path / "tr"))
    assert r2.stdout == r.stdout.replace("", "")
    assert (tmp_path / "tr" / "overtemp.csv").read_bytes() == csv1
    assert (tmp_path / "tr" / "overtemp.vcd").read_bytes() == vcd1
    assert b"$var real 64" in vcd1 and b"$var wire 1" in vcd1


def test_plot_and_parallel_runs_report_in_file_order(tmp_path):
    other = _write(tmp_path, 'duration = "3s"\n[[expect]]\nnever = "Main.trip"\n')
    png = tmp_path / "trend.png"
    r = _cli(str(other), str(SC / "overtemp.toml"), "--jobs", "2", "--trace", "Main.tMax;Main.trip",
             "--plot", str(png), "--trace-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))]
    assert lines[0].startswith("PASS t ") and lines[1].startswith("PASS over-temperature")
    for stem in ("s", "overtemp"):
        data = (tmp_path / f"trend-{stem}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert r.stdout.strip().endswith("2 passed, 0 failed")


def test_expectations_compare_reals_in_binary32_as_st_does(tmp_path):
    p = _write(tmp_path, 'duration = "1s"\n[initial]\n"Main.limit" = 3.65\n'
               '[[expect]]\nalways = "Main.limit = 3.65 AND NOT (Main.limit > 3.65) AND NOT NOT TRUE"\n')
    r = run_scenario(load_scenario(str(p)))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects]
