"""Scenario files on the virtual clock: trajectories, faults, actions,
expectations, reports, traces, and byte-identical reruns."""
from __future__ import annotations

from tests.stutil import shared_dir
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


# ------------------------------------------------------------------ input quality
def test_stale_and_bad_hold_the_value_and_set_the_quality(tmp_path):
    p = _write(tmp_path, 'duration = "8s"\n[[input]]\ntag = "Main.tMax"\nkind = "ramp"\nfrom = "0s"\nto = "8s"\n'
               'start = 20.0\nend = 36.0\n'
               '[[fault]]\ntag = "Main.tMax"\nkind = "stale"\nfrom = "2s"\nto = "4s"\n'
               '[[fault]]\ntag = "Main.tMax"\nkind = "bad"\nfrom = "5s"\nto = "6s"\n'
               '[[expect]]\nat = "1s"\nexpect = "IO_OK(Main.tMax) AND IO_AGE(Main.tMax) = T#0s"\n'
               '[[expect]]\nat = "3500ms"\nexpect = "NOT IO_OK(Main.tMax) AND IO_QUALITY(Main.tMax) = 1 '
               'AND IO_AGE(Main.tMax) = T#1600ms"\n'
               '[[expect]]\nat = "5500ms"\nexpect = "IO_QUALITY(Main.tMax) = 2"\n'
               '[[expect]]\nat = "4s"\nexpect = "IO_OK(Main.tMax)"\n'
               '[[expect]]\nat = "7s"\nexpect = "IO_OK(Main.tMax)"\n')
    r = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax"])
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]
    vals = [row[1][0] for row in r.trace]
    assert vals[19] == vals[20] == vals[39] and abs(vals[19] - 23.8) < 1e-4     # held from the last fresh value
    assert abs(vals[40] - 28.0) < 1e-4                                          # fresh again at 4 s
    assert vals[50] == vals[59] == vals[49] and abs(vals[60] - 32.0) < 1e-4


def test_a_failing_quality_expectation_reports_the_quality(tmp_path):
    p = _write(tmp_path, 'duration = "3s"\n[[input]]\ntag = "Main.tMax"\nvalue = 30.0\n'
               '[[fault]]\ntag = "Main.tMax"\nkind = "bad"\nfrom = "1s"\nto = "2s"\n'
               '[[expect]]\nalways = "IO_OK(Main.tMax)"\n')
    x = run_scenario(load_scenario(str(p))).expects[0]
    assert not x.ok and x.fail_t_ns == 1_000_000_000
    assert x.fail_values == {"IO_QUALITY(Main.tMax)": "bad"}


def _io_scenario(tmp_path, body: str) -> Path:
    p = tmp_path / "q.toml"
    p.write_text(f'[scenario]\nsources = ["{SC / "bms.st"}"]\nio_map = "{SC / "bms_map.toml"}"\n'
                 'interval = "100ms"\nduration = "8s"\n'
                 '[[input]]\ntag = "Main.tBat"\nkind = "ramp"\nfrom = "0s"\nto = "8s"\nstart = 20.0\nend = 36.0\n'
                 + body)
    return p


def test_comm_loss_silences_a_device_until_each_point_times_out(tmp_path):
    # tBat times out after 500 ms and shows its substitute (99.0); soc, fed its initial
    # value by the quiet field, keeps the device's 3 s timeout
    p = _io_scenario(tmp_path, '[[fault]]\ndevice = "bms"\nkind = "comm_loss"\nfrom = "2s"\nto = "6s"\n'
                     '[[expect]]\nat = "2400ms"\nexpect = "IO_OK(Main.tBat) AND NOT Main.overTemp"\n'
                     '[[expect]]\nat = "2500ms"\nexpect = "IO_QUALITY(Main.tBat) = 1 AND Main.tBat = 99.0 '
                     'AND Main.overTemp AND Main.pSet = 0.0"\n'
                     '[[expect]]\nat = "4900ms"\nexpect = "IO_OK(Main.soc) AND Main.soc = 50"\n'
                     '[[expect]]\nat = "5s"\nexpect = "NOT IO_OK(Main.soc) AND IO_AGE(Main.soc) = T#3100ms"\n'
                     '[[expect]]\nat = "6s"\nexpect = "IO_OK(Main.tBat) AND IO_OK(Main.soc) AND Main.tBat = 32.0"\n')
    r = run_scenario(load_scenario(str(p)))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]


def test_a_value_outside_the_points_range_is_bad_and_not_taken(tmp_path):
    p = _io_scenario(tmp_path, '[[fault]]\ntag = "Main.tBat"\nkind = "offset"\nvalue = 100.0\nfrom = "3s"\nto = "4s"\n'
                     '[[expect]]\nat = "3500ms"\nexpect = "IO_QUALITY(Main.tBat) = 2 AND Main.tBat = 99.0"\n'
                     '[[expect]]\nat = "4s"\nexpect = "IO_OK(Main.tBat) AND Main.tBat = 28.0"\n')
    r = run_scenario(load_scenario(str(p)))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]


def test_quality_faults_need_an_input_and_comm_loss_an_io_map(tmp_path):
    p = _write(tmp_path, 'duration = "3s"\n[[input]]\ntag = "Main.tMax"\nvalue = 30.0\n'
               '[[fault]]\ntag = "Main.tMax"\nkind = "stale"\nfrom = "1s"\nto = "2s"\n'
               '[[fault]]\ndevice = "bms"\nkind = "comm_loss"\nfrom = "1s"\nto = "2s"\n'
               '[[expect]]\nalways = "TRUE"\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(p))
    assert any(":15: fault[1].device: comm_loss needs the scenario's io_map" in m for m in e.value.problems), \
        e.value.problems
    p = _write(tmp_path, 'duration = "3s"\n[[fault]]\ntag = "Main.limit"\nkind = "bad"\nfrom = "1s"\nto = "2s"\n'
               '[[expect]]\nalways = "IO_OK(Main.limit)"\n')
    with pytest.raises(ScenarioError) as e:
        run_scenario(load_scenario(str(p)))
    assert any(":7: fault[0].tag: 'Main.limit' is not an input" in m for m in e.value.problems), e.value.problems
    p = _io_scenario(tmp_path, '[[fault]]\ndevice = "inverter"\nkind = "comm_loss"\nfrom = "1s"\nto = "2s"\n'
                     '[[expect]]\nalways = "IO_OK(3)"\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(p))
    assert any("no device 'inverter' in bms_map.toml (devices: bms, pcs)" in m for m in e.value.problems)
    with pytest.raises(ScenarioError) as e:
        run_scenario(load_scenario(str(_io_scenario(tmp_path, '[[expect]]\nalways = "IO_OK(3)"\n'))))
    assert "IO_OK takes one input variable" in str(e.value)


def test_a_table_with_two_points_at_one_time_jumps_there(tmp_path):
    p = _write(tmp_path, 'duration = "3s"\n[[input]]\ntag = "Main.tMax"\nkind = "table"\n'
               'points = [["0s", 20.0], ["1s", 20.0], ["1s", 30.0], ["2s", 40.0]]\n[[expect]]\nalways = "TRUE"\n')
    r = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax"])
    vals = [row[1][0] for row in r.trace]
    assert vals[9] == 20.0 and vals[10] == 30.0 and abs(vals[15] - 35.0) < 1e-4 and vals[25] == 40.0


def test_a_downward_jump_in_a_table_is_a_jump_not_a_ramp(tmp_path):
    p = _write(tmp_path, 'duration = "3s"\n[[input]]\ntag = "Main.tMax"\nkind = "table"\n'
               'points = [["0s", 30.0], ["1s", 30.0], ["1s", 20.0], ["2s", 20.0]]\n[[expect]]\nalways = "TRUE"\n')
    r = run_scenario(load_scenario(str(p)), trace_tags=["Main.tMax"])
    vals = [row[1][0] for row in r.trace]
    assert vals[5] == 30.0 and vals[9] == 30.0 and vals[10] == 20.0 and vals[15] == 20.0


# ------------------------------------------------------------------ CAN captures
def _capture(tmp_path, gap=(3.0, 4.0)) -> Path:
    """A candump -L log: 0x356 every 100 ms, temperature 20 + t degC, silent in `gap`;
    0x355 every second, SOC 80 %."""
    from runtime.io.can_codec import CanCodec
    from runtime.io.can_log import write_candump
    codec = CanCodec(str(shared_dir() / "io" / "bms_can.dbc"))
    frames = []
    for k in range(61):
        t = k / 10
        if not gap[0] <= t < gap[1]:
            frames.append((1000.0 + t, 0x356, codec.encode("BMS_Measurements_356", {
                "BatteryVoltage": 51.2, "BatteryCurrent": 0.0, "BatteryTemperature": round(20.0 + t, 1)})))
        if k % 10 == 0:
            frames.append((1000.0 + t, 0x355, codec.encode("BMS_SocSoh_355", {"SOC": 80, "SOH": 99})))
    p = tmp_path / "capture.log"
    write_candump(str(p), frames)
    return p


def test_a_can_capture_drives_inputs_through_the_dbc(tmp_path):
    _capture(tmp_path)
    (tmp_path / "bms.st").write_text((SC / "bms.st").read_text())
    p = tmp_path / "c.toml"
    p.write_text('[scenario]\nsources = ["bms.st"]\ninterval = "100ms"\nduration = "6s"\n'
                 '[[input]]\ncan_log = "capture.log"\ndbc = "' + str(shared_dir() / 'io' / 'bms_can.dbc') + '"\ntimeout = "500ms"\n'
                 'signals = { "BMS_Measurements_356.BatteryTemperature" = "Main.tBat", "0x355.SOC" = "Main.soc" }\n'
                 '[[fault]]\ntag = "Main.tBat"\nkind = "offset"\nvalue = 40.0\nfrom = "5s"\nto = "5500ms"\n'
                 '[[expect]]\nat = "2s"\nexpect = "Main.tBat = 22.0 AND Main.soc = 80 AND IO_OK(Main.tBat)"\n'
                 '[[expect]]\nat = "3400ms"\nexpect = "IO_OK(Main.tBat)"\n'               # the last frame came at 2.9 s
                 '[[expect]]\nat = "3500ms"\nexpect = "NOT IO_OK(Main.tBat) AND Main.tBat = 22.9"\n'
                 '[[expect]]\nat = "4s"\nexpect = "IO_OK(Main.tBat) AND Main.tBat = 24.0"\n'
                 '[[expect]]\nat = "5200ms"\nexpect = "Main.tBat = 65.2 AND Main.overTemp"\n'
                 '[[expect]]\nat = "6s"\nexpect = "Main.tBat = 26.0 AND NOT Main.overTemp"\n')
    r = run_scenario(load_scenario(str(p)))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]


def test_a_can_capture_through_the_io_map_device_with_comm_loss_and_speed(tmp_path):
    _capture(tmp_path, gap=(99.0, 99.0))
    p = tmp_path / "c.toml"
    p.write_text(f'[scenario]\nsources = ["{SC / "bms.st"}"]\nio_map = "{SC / "bms_map.toml"}"\n'
                 'interval = "100ms"\nduration = "4s"\n'
                 '[[input]]\ncan_log = "capture.log"\ndevice = "bms"\nspeed = 2.0\nstart = "1s"\n'
                 '[[fault]]\ndevice = "bms"\nkind = "comm_loss"\nfrom = "2s"\nto = "3s"\n'
                 '[[expect]]\nat = "500ms"\nexpect = "IO_QUALITY(Main.tBat) = 3"\n'    # nothing received yet
                 '[[expect]]\nat = "1900ms"\nexpect = "Main.tBat = 21.8 AND IO_OK(Main.tBat) AND Main.soc = 80"\n'
                 '[[expect]]\nat = "2500ms"\nexpect = "NOT IO_OK(Main.tBat) AND Main.tBat = 99.0 AND IO_OK(Main.soc)"\n'
                 '[[expect]]\nat = "3s"\nexpect = "IO_OK(Main.tBat) AND Main.tBat = 24.0"\n')
    r = run_scenario(load_scenario(str(p)))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]


def test_can_capture_inputs_are_checked_against_the_dbc(tmp_path):
    _capture(tmp_path)
    (tmp_path / "bms.st").write_text((SC / "bms.st").read_text())
    p = tmp_path / "c.toml"
    p.write_text('[scenario]\nsources = ["bms.st"]\ninterval = "100ms"\nduration = "1s"\n'
                 '[[input]]\ncan_log = "capture.log"\ndbc = "' + str(shared_dir() / 'io' / 'bms_can.dbc') + '"\n'
                 'signals = { "BMS_Measurements_356.BatteryTemp" = "Main.tBat" }\n'
                 '[[input]]\ncan_log = "nope.log"\ndevice = "bms"\n'
                 '[[expect]]\nalways = "TRUE"\n')
    with pytest.raises(ScenarioError) as e:
        load_scenario(str(p))
    msgs = e.value.problems
    assert any(":8: input[0].signals:" in m and "did you mean BatteryTemperature" in m for m in msgs), msgs
    assert any(":10: input[1].can_log: no such file: nope.log" in m for m in msgs), msgs
    assert any(":11: input[1].device: naming a device needs the scenario's io_map" in m for m in msgs), msgs


def test_the_program_reads_the_quality_a_fault_sets(tmp_path):
    (tmp_path / "q.st").write_text("PROGRAM Main\nVAR\n  tMax : REAL := 25.0;\n  ok : BOOL;\n  q : INT;\n"
                                   "  age : TIME;\nEND_VAR\nok := IO_OK(tMax);\nq := IO_QUALITY(tMax);\n"
                                   "age := IO_AGE(tMax);\nEND_PROGRAM\n")
    p = tmp_path / "q.toml"
    p.write_text('[scenario]\nsources = ["q.st"]\ninterval = "100ms"\nduration = "4s"\n'
                 '[[input]]\ntag = "Main.tMax"\nvalue = 30.0\n'
                 '[[fault]]\ntag = "Main.tMax"\nkind = "stale"\nfrom = "2s"\nto = "3s"\n'
                 '[[expect]]\nat = "1s"\nexpect = "Main.ok AND Main.q = 0 AND Main.age = T#0s"\n'
                 '[[expect]]\nat = "2500ms"\nexpect = "NOT Main.ok AND Main.q = 1 AND Main.age = T#600ms"\n'
                 '[[expect]]\nat = "3s"\nexpect = "Main.ok AND Main.q = 0"\n')
    r = run_scenario(load_scenario(str(p)))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]


def test_logged_expectations_look_into_the_event_log_records(tmp_path):
    (tmp_path / "clamp.st").write_text("""
PROGRAM Main
VAR
    req : REAL;
    {attribute 'log'}
    clampLog : STRING;
END_VAR
IF req > 5000.0 THEN clampLog := CONCAT('clamp: requested ', REAL_TO_STRING(req)); ELSE clampLog := ''; END_IF
END_PROGRAM
""")
    p = tmp_path / "c.toml"
    p.write_text('[scenario]\nsources = ["clamp.st"]\nduration = "5s"\ninterval = "100ms"\n'
                 '[[input]]\ntag = "Main.req"\nkind = "step"\nat = "2s"\nbefore = 1000.0\nafter = 9000.0\n'
                 '[[expect]]\nlogged = "clamp: requested 9000"\nkind = "log"\nby = "2100ms"\n'
                 '[[expect]]\nlogged = "clamp: requested 9000"\nby = "1s"\n'
                 '[[expect]]\nlogged = "division"\nkind = "fault"\n')
    r = run_scenario(load_scenario(str(p)))
    assert [x.ok for x in r.expects] == [True, False, False]
    assert r.expects[0].describe() == "logged (log) by 2.1s: clamp: requested 9000"
    assert "no such record among 0 fault record(s)" in r.expects[2].fail_values["reason"]


def test_logged_fields_match_alarm_transitions(tmp_path):
    (tmp_path / "a.st").write_text("""
PROGRAM Main
VAR
    t : REAL;
    {attribute 'alarm' := 'severity=800; message=Too hot'}
    hot : BOOL;
END_VAR
hot := t > 50.0;
END_PROGRAM
""")
    p = tmp_path / "a.toml"
    p.write_text('[scenario]\nsources = ["a.st"]\nduration = "3s"\ninterval = "100ms"\n'
                 '[[input]]\ntag = "Main.t"\nkind = "step"\nat = "1s"\nbefore = 20.0\nafter = 60.0\n'
                 '[[expect]]\nlogged = { name = "Main.hot", what = "active", severity = 800 }\nkind = "alarm"\nby = "1s"\n'
                 '[[expect]]\nlogged = { name = "Main.hot", what = "active" }\nkind = "alarm"\nby = "900ms"\n')
    r = run_scenario(load_scenario(str(p)))
    assert [x.ok for x in r.expects] == [True, False]
