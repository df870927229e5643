"""The live runtime on the real clock: scheduling, faults and safe state,
resets, retain across restarts, record/replay, the control socket, the
site file's errors, and `gridplc run` stopping cleanly on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.control import request
from runtime.eventlog import read_log, verify_log
from runtime.journal import replay
from runtime.live import LiveRuntime, StartError
from runtime.site import SiteError, load_site

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
VAR_GLOBAL
  order : ARRAY[1..64] OF INT;
  n : INT;
END_VAR

PROGRAM Fast
VAR_EXTERNAL order : ARRAY[1..64] OF INT; n : INT; END_VAR
VAR RETAIN
  energy : LREAL;
  starts : DINT;
END_VAR
VAR PERSISTENT
  lifetime : DINT;
END_VAR
VAR
  divisor : INT := 1;
  spin : BOOL;
  x : INT;
  cmd : REAL := 5.0;
  out : REAL;
  ticks : DINT;
END_VAR
ticks := ticks + 1;
energy := energy + 0.5;
lifetime := lifetime + 1;
IF n < 64 THEN n := n + 1; order[n] := 1; END_IF;
x := 100 / divisor;
WHILE spin DO x := x + 1; END_WHILE;
out := cmd;
END_PROGRAM

PROGRAM Slow
VAR_EXTERNAL order : ARRAY[1..64] OF INT; n : INT; END_VAR
VAR beats : DINT; level : REAL := 1.0; END_VAR
beats := beats + 1;
IF n < 64 THEN n := n + 1; order[n] := 2; END_IF;
END_PROGRAM

CONFIGURATION Site
  RESOURCE Cpu ON PLC
    TASK FastT(INTERVAL := T#10ms, PRIORITY := 1);
    TASK SlowT(INTERVAL := T#30ms, PRIORITY := 5);
    PROGRAM Main WITH FastT : Fast;
    PROGRAM Aux WITH SlowT : Slow;
  END_RESOURCE
END_CONFIGURATION
"""

SITE = """
[site]
name = "test"
sources = ["prog.st"]
state_dir = "state"

[retain]
period = "100ms"

[tasks.FastT]
watchdog = "300ms"

[[outputs]]
tag = "Main.out"
safe = "-1.0"

[[outputs]]
tag = "Aux.level"

[[inputs]]
tag = "Main.cmd"
"""


@pytest.fixture
def site(tmp_path):
    (tmp_path / "prog.st").write_text(PROGRAM)
    (tmp_path / "site.toml").write_text(SITE)
    return load_site(str(tmp_path / "site.toml"))


def _running(site, **kw) -> LiveRuntime:
    rt = LiveRuntime(site, **kw)
    rt.start()
    return rt


def _wait(cond, timeout_s=5.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_tasks_run_on_their_intervals_in_priority_order(site):
    rt = _running(site)
    try:
        time.sleep(0.6)
    finally:
        rt.stop()
    st = rt.status()["tasks"]
    fast, slow = st["FastT"]["scans"], st["SlowT"]["scans"]
    assert 50 <= fast <= 62, fast          # 0.6 s of a 10 ms task, started at t=0
    assert 17 <= slow <= 22, slow
    order = rt.engine.globals.order
    # at t=0 both are due: the higher priority (lower number) runs first
    assert order[0] == 1 and order[1] == 2
    # a slow tick always comes after the fast one of the same tick
    assert all(not (order[i] == 2 and order[i + 1] == 1 and i % 4 == 0) for i in range(60))


def test_fault_drives_safe_outputs_and_other_tasks_keep_running(site):
    rt = _running(site)
    try:
        assert _wait(lambda: rt.engine.tasks[0].scans > 3)
        rt.write("Main.divisor", "0", "tester")
        assert _wait(lambda: rt.engine.task("FastT").faulted is not None)
        fault = rt.engine.task("FastT").faulted
        assert "division by zero" in fault.what
        assert fault.where.split(":")[1] == "28"          # x := 100 / divisor;
        assert rt.engine.output_image["Main.out"] == -1.0  # the declared safe value
        beats = rt.read("Aux.beats")["value"]
        assert _wait(lambda: rt.read("Aux.beats")["value"] > beats + 2)   # the other task runs on
        status = rt.status()["tasks"]["FastT"]
        assert status["fault"] and "division by zero" in status["fault"]
        # operator reset: warm keeps RETAIN values, the task runs again
        rt.write("Main.divisor", "1", "tester")          # queued; applied at the next scan
        energy = rt.read("Main.energy")["value"]
        time.sleep(0.05)
        rt.reset("FastT", "warm", "tester")
        assert rt.read("Main.energy")["value"] >= energy > 0
        assert rt.read("Main.divisor")["value"] == 1     # a fresh instance: initial value
        assert _wait(lambda: rt.engine.output_image["Main.out"] == 5.0)
    finally:
        rt.stop()
    kinds = [r["kind"] for r in read_log(site.event_log_path)]
    assert "fault" in kinds and "reset" in kinds and "write" in kinds
    w = [r for r in read_log(site.event_log_path) if r["kind"] == "write"][0]
    assert w["data"] == {"path": "Main.divisor", "old": 1, "new": 0, "who": "tester"}
    assert verify_log(site.event_log_path).ok


def test_cold_reset_clears_retain_but_keeps_persistent(site):
    rt = _running(site)
    try:
        assert _wait(lambda: rt.read("Main.energy")["value"] > 2)
        with rt.lock:
            rt.engine.reset_task("FastT", "cold", "tester")
            energy = rt.read("Main.energy")["value"]
            lifetime = rt.read("Main.lifetime")["value"]
        assert energy == 0.0 and lifetime > 4
    finally:
        rt.stop()


def test_watchdog_stops_a_runaway_loop_and_the_process_stays_up(site):
    rt = _running(site)
    try:
        assert _wait(lambda: rt.engine.tasks[0].scans > 2)
        rt.write("Main.spin", "TRUE", "tester")
        assert _wait(lambda: rt.engine.task("FastT").faulted is not None, 3.0)
        f = rt.engine.task("FastT").faulted
        assert "watchdog" in f.what and f.where is not None and f.where.split(":")[1] == "29"
        beats = rt.read("Aux.beats")["value"]
        assert _wait(lambda: rt.read("Aux.beats")["value"] > beats + 1)
        assert rt.engine.output_image["Main.out"] == -1.0
    finally:
        rt.stop()


def test_retain_survives_a_restart_and_cold_start_ignores_it(site):
    rt = _running(site)
    time.sleep(0.4)
    rt.stop()
    energy = rt.read("Main.energy")["value"]
    lifetime = rt.read("Main.lifetime")["value"]
    assert energy > 10
    warm = LiveRuntime(site)
    try:
        assert warm.read("Main.energy")["value"] == energy     # the final write at stop
        assert warm.read("Main.ticks")["value"] == 0           # not RETAIN
    finally:
        warm.stop()
    cold = LiveRuntime(site, cold=True)
    try:
        assert cold.read("Main.energy")["value"] == 0.0
        assert cold.read("Main.lifetime")["value"] == lifetime   # PERSISTENT survives a cold start
    finally:
        cold.stop()
    retain_records = [r for r in read_log(site.event_log_path) if r["kind"] == "retain"]
    assert retain_records and retain_records[0]["data"]["restored"] == 3


def test_a_renamed_retained_variable_is_reported_not_misloaded(site, tmp_path):
    rt = LiveRuntime(site)
    rt.stop()
    (tmp_path / "prog.st").write_text(PROGRAM.replace("energy", "energyKwh"))
    rt2 = LiveRuntime(load_site(str(tmp_path / "site.toml")))
    try:
        assert rt2.read("Main.energyKwh")["value"] == 0.0
    finally:
        rt2.stop()
    rec = [r for r in read_log(site.event_log_path) if r["kind"] == "retain"][-1]
    assert any("Main.energy" in line and "no longer declared" in line for line in rec["data"]["report"])


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_retain_file_refuses_to_start_unless_cold(site, damage):
    rt = LiveRuntime(site)
    rt.stop()
    data = Path(site.retain_path).read_bytes()
    Path(site.retain_path).write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage")
    with pytest.raises(StartError) as e:
        LiveRuntime(site)
    assert site.retain_path in str(e.value) and "--cold" in str(e.value)
    LiveRuntime(site, cold=True).stop()


def test_record_and_replay_reproduce_every_output(site, tmp_path):
    rec = tmp_path / "rec"
    rt = _running(site, record_dir=str(rec))
    try:
        time.sleep(0.15)
        rt.engine.input_image["Main.cmd"] = 7.5       # what a driver would stage
        time.sleep(0.1)
        rt.force("Main.cmd", "9.25", "tester")
        time.sleep(0.1)
        rt.release("Main.cmd", "tester")
        rt.write("Main.divisor", "0", "tester")       # a fault, replayed too
        time.sleep(0.1)
    finally:
        rt.stop()
    r = replay(str(rec))
    assert r.ok, r.divergence
    assert r.scans >= 40
    # tamper with one recorded output: replay names the scan and the tag
    lines = (rec / "scans.jsonl").read_text().splitlines()
    for i, line in enumerate(lines):
        obj = json.loads(line)
        if "out" in obj and "Main.out" in obj["out"] and obj["out"]["Main.out"] == 9.25:
            obj["out"]["Main.out"] = 9.5
            lines[i] = json.dumps(obj)
            break
    else:
        pytest.fail("the forced output was not recorded")
    (rec / "scans.jsonl").write_text("\n".join(lines) + "\n")
    bad = replay(str(rec))
    assert not bad.ok and f"scan {obj['k']}" in bad.divergence and "Main.out" in bad.divergence


def test_control_socket_reads_writes_and_refuses(site):
    rt = _running(site)
    try:
        cf = site.control_file
        assert request(cf, {"op": "read", "path": "Main.cmd"})["result"]["value"] == 5.0
        r = request(cf, {"op": "write", "path": "Main.divisor", "value": "2", "who": "alice"})
        assert r["ok"] and r["result"]["new"] == 2
        assert _wait(lambda: rt.read("Main.divisor")["value"] == 2)
        bad = request(cf, {"op": "write", "path": "Main.cmd", "value": "1.0"})
        assert not bad["ok"] and "input" in bad["error"]            # bound to the field: force it instead
        bad = request(cf, {"op": "write", "path": "Main.x", "value": "70000"})
        assert not bad["ok"] and "outside" in bad["error"]
        bad = request(cf, {"op": "write", "path": "Main.nope", "value": "1"})
        assert not bad["ok"] and "nope" in bad["error"]
        assert not request(cf, {"op": "frobnicate"})["ok"]
        st = request(cf, {"op": "status"})["result"]
        assert set(st["tasks"]) == {"FastT", "SlowT"}
        assert {"scans", "exec_last_ms", "exec_max_ms", "jitter_p99_ms", "overruns", "fault"} <= set(st["tasks"]["FastT"])
    finally:
        rt.stop()


def test_site_file_errors_name_file_line_and_key(tmp_path):
    (tmp_path / "prog.st").write_text(PROGRAM)
    p = tmp_path / "bad.toml"
    p.write_text('[site]\nname = "x"\nstate_dir = "s"\nwatchdog = "fast"\n\n[control]\nlisten = "10.0.0.5:80"\n'
                 '[retain]\nperiod = "1s"\nspeed = 3\n')
    with pytest.raises(SiteError) as e:
        load_site(str(p))
    msgs = e.value.problems
    assert any(m.startswith(f"{p}:1: site.sources: missing") for m in msgs), msgs
    assert any(f"{p}:4: site.watchdog:" in m for m in msgs), msgs
    assert any(f"{p}:7: control.listen:" in m and "loopback" in m for m in msgs), msgs
    assert any(f"{p}:10: retain.speed: unknown key" in m for m in msgs), msgs


def test_names_the_program_lacks_are_refused_at_start(tmp_path):
    (tmp_path / "prog.st").write_text(PROGRAM)
    p = tmp_path / "site.toml"
    p.write_text('[site]\nsources = ["prog.st"]\n\n[tasks.Fsat]\nwatchdog = "50ms"\n\n'
                 '[[outputs]]\ntag = "Main.outt"\n\n[[outputs]]\ntag = "Main.out"\nsafe = "hot"\n')
    with pytest.raises(StartError) as e:
        LiveRuntime(load_site(str(p)))
    text = str(e.value)
    assert f"{p}:4: tasks.Fsat: the program has no task 'Fsat'" in text
    assert "outputs[0].tag" in text and "outt" in text
    assert "outputs[1].safe" in text and "hot" in text


def test_gridplc_run_stops_cleanly_on_sigterm(site, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", site.path, "-q"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait(lambda: os.path.exists(site.control_file), 20)
        assert _wait(lambda: request(site.control_file, {"op": "status"})["result"]["scan"] > 20, 10)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    log = read_log(site.event_log_path)
    assert log[0]["kind"] == "start" and log[-1]["kind"] == "stop"
    assert log[-1]["data"]["reason"] == "signal SIGTERM" and log[-1]["data"]["retain_written"] is True
    assert not os.path.exists(site.control_file)
    assert Path(site.retain_path).exists()
    r = subprocess.run([sys.executable, "-m", "runtime.cli", "log", "verify", site.event_log_path], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "chain intact" in r.stdout


def test_tag_paths_are_canonical_so_an_input_cannot_be_written_by_another_spelling(site):
    rt = LiveRuntime(site)
    try:
        with pytest.raises(Exception) as e:
            rt.write("main.CMD", "1.0", "tester")
        assert "Main.cmd" in str(e.value) and "input" in str(e.value)
        rt.force("MAIN.cmd", "2.0", "tester")
        rt.force("Main.Cmd", "3.0", "tester")
        assert rt.engine.forced == {"Main.cmd": 3.0}           # one force, not two
        rt.release("main.cmd", "tester")
        assert rt.engine.forced == {}
    finally:
        rt.stop()


def test_replay_reproduces_a_run_with_an_operator_reset(site, tmp_path):
    rec = tmp_path / "rec"
    rt = _running(site, record_dir=str(rec))
    try:
        time.sleep(0.1)
        rt.write("Main.divisor", "0", "tester")
        assert _wait(lambda: rt.engine.task("FastT").faulted is not None)
        rt.reset("FastT", "warm", "tester")
        time.sleep(0.1)
    finally:
        rt.stop()
    r = replay(str(rec))
    assert r.ok, r.divergence
    assert any('"reset"' in line for line in (rec / "scans.jsonl").read_text().splitlines())


def test_tags_handed_out_before_a_reset_follow_the_new_objects(site):
    rt = LiveRuntime(site)
    try:
        tag = rt.engine.tag("Main.ticks")
        rt.engine.scan(0, rt.engine.tasks)
        assert tag.get() == 1
        rt.engine.reset_task("FastT", "cold", "tester")
        rt.engine.scan(10_000_000, rt.engine.tasks[:1])
        assert tag.get() == 1                    # the fresh instance's first scan, read through the old tag
    finally:
        rt.stop()
