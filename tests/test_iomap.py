"""I/O map files: loading, every kind of problem with its line, binding
against the program, and `gridplc check` over programs and maps together."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runtime.io.iomap import IoMapError, bind_iomap, load_iomap, read_iomap
from tests.stutil import build

HERE = os.path.dirname(__file__)
FIX = os.path.join(HERE, "fixtures", "io")
GUARD = open(os.path.join(FIX, "guard.st"), encoding="utf-8").read()
DBC = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "io", "bms_can.dbc"))


def _write(tmp_path, text: str, name: str = "m.toml") -> str:
    p = tmp_path / name
    p.write_text(text.replace("@DBC@", DBC.replace("\\", "/")))
    return str(p)


def test_good_map_loads_devices_points_and_server():
    m = load_iomap(os.path.join(FIX, "good.toml"))
    assert set(m.devices) == {"bms", "pcs"}
    bms, pcs = m.devices["bms"], m.devices["pcs"]
    assert (bms.transport, bms.interface, bms.channel, bms.timeout_ns) == ("can", "virtual", "t-bms", 3_000_000_000)
    assert bms.transmit[0].message == "INV_Heartbeat_305" and bms.transmit[0].period_ns == 1_000_000_000
    assert (pcs.host, pcs.port, pcs.period_ns, pcs.timeout_ns) == ("127.0.0.1", 1502, 200_000_000, 1_000_000_000)
    t = m.points[0]
    assert (t.var, t.direction, t.signal, t.range, t.timeout_ns) == \
        ("Main.tBat", "input", "BatteryTemperature", (-40.0, 100.0), 2_000_000_000)
    assert m.points[1].timeout_ns == 3_000_000_000        # the device's default
    p = m.points[2]
    assert (p.direction, p.table, p.address, p.type, p.scale, p.safe) == ("output", "holding", 100, "INT32", 0.1, "0.0")
    assert m.points[3].safe == "FALSE" and m.points[3].type == "BOOL"
    assert m.modbus_server.points[0].var == "Main.soc"


def test_binding_declares_inputs_with_timeouts_and_outputs_with_safe_values():
    m = load_iomap(os.path.join(FIX, "good.toml"))
    e = build(GUARD, interval="100ms")
    try:
        bind_iomap(m, e)
        assert set(e.inputs) == {"Main.tBat", "Main.soc"}
        assert e.input_points["Main.tBat"].timeout_ns == 2_000_000_000
        assert e.input_points["Main.tBat"].range == (-40.0, 100.0)
        assert e.outputs["Main.contactor"].safe is False
    finally:
        e.close()


def test_every_problem_at_once_with_file_line_and_key():
    m, problems = read_iomap(os.path.join(FIX, "bad.toml"))
    e = build(GUARD, interval="100ms")
    try:
        from runtime.io.iomap import bind_problems
        problems += bind_problems(m, e)
    finally:
        e.close()
    text = "\n".join(problems)
    path = os.path.join(FIX, "bad.toml")
    assert f"{path}:11: devices.pcs.colour: unknown key" in text
    assert f"{path}:14: points[0].var: 'Main.nosuch': Main has no member 'nosuch'" in text
    assert f"{path}:23: points[1].signal: message BMS_Measurements_356 has no signal 'BatteryTemprature' " \
           "(did you mean BatteryTemperature" in text
    assert f"{path}:26: points[2].var: signal BatteryVoltage has fractional values; INT cannot hold them" in text
    assert f"{path}:44: points[4].address: holding register 101 of 'pcs' is also used by points[3]" in text
    assert f"{path}:54: points[6].var: 'Main.tBat' is already bound by points[5]" in text
    assert len(problems) == 6


@pytest.mark.parametrize("body, expected", [
    ('[devices.x]\ntransport = "serial"\n', "2: devices.x.transport: 'serial': one of can, modbus, opcua"),
    ('[devices.x]\ntransport = "modbus"\nhost = "127.0.0.1"\nport = 70000\n', "4: devices.x.port: 70000 is not a TCP port"),
    ('[devices.x]\ntransport = "can"\ninterface = "virtual"\nchannel = "a"\n', "1: devices.x.dbc: missing"),
    ('[devices.x]\ntransport = "opcua"\nendpoint = "opc.tcp://127.0.0.1:4840"\npassword = "hunter2"\n',
     "4: devices.x.password: passwords never go in the map"),
    ('[[points]]\nvar = "Main.a"\ndevice = "nope"\n', "3: points[0].device: 'nope': name a device"),
    ('[devices.x]\ntransport = "modbus"\nhost = "h"\n[[points]]\nvar = "Main.a"\ndevice = "x"\ntable = "input"\n'
     'address = 1\ntype = "INT16"\ndirection = "output"\n', "7: points[0].table: a input is read-only"),
    ('[devices.x]\ntransport = "modbus"\nhost = "h"\n[[points]]\nvar = "Main.a"\ndevice = "x"\ntable = "holding"\n'
     'address = 1\ntype = "BOOL"\n', "9: points[0].type: BOOL in a register needs bit"),
    ('[devices.x]\ntransport = "modbus"\nhost = "h"\n[[points]]\nvar = "Main.a"\ndevice = "x"\ntable = "holding"\n'
     'address = 1\ntype = "INT16"\nsafe = "0"\n', "10: points[0].safe: 'safe' is for outputs"),
    ('[devices.x]\ntransport = "opcua"\nendpoint = "opc.tcp://127.0.0.1:4840"\n[[points]]\nvar = "Main.a"\n'
     'device = "x"\nnode = "ns=2;q=oops"\n', "7: points[0].node:"),
    ('[devices.x]\ntransport = "can"\ninterface = "virtual"\nchannel = "a"\ndbc = "@DBC@"\n'
     '[[devices.x.transmit]]\nmessage = "INV_Heartbeat"\n', "7: devices.x.transmit[0].message: no message 'INV_Heartbeat'"),
    ('[devices.x]\ntransport = "modbus"\nhost = "h"\ntimeout = "soon"\n', "4: devices.x.timeout:"),
])
def test_one_problem(tmp_path, body, expected):
    path = _write(tmp_path, body)
    with pytest.raises(IoMapError) as ei:
        load_iomap(path)
    assert any(p.startswith(f"{path}:{expected.split(':', 1)[0]}:") and expected.split(":", 1)[1] in p
               for p in ei.value.problems), ei.value.problems


def test_type_that_cannot_hold_the_register(tmp_path):
    path = _write(tmp_path, '[devices.x]\ntransport = "modbus"\nhost = "h"\n'
                  '[[points]]\nvar = "Main.mode"\ndevice = "x"\ntable = "input"\naddress = 0\ntype = "UINT32"\n'
                  '[[points]]\nvar = "Main.overTemp"\ndevice = "x"\ntable = "input"\naddress = 4\ntype = "INT16"\n'
                  '[[points]]\nvar = "Main.counter"\ndevice = "x"\ntable = "input"\naddress = 6\ntype = "FLOAT32"\n')
    m = load_iomap(path)
    e = build(GUARD, interval="100ms")
    try:
        with pytest.raises(IoMapError) as ei:
            bind_iomap(m, e)
    finally:
        e.close()
    probs = ei.value.problems
    assert f"{path}:5: points[0].var: UINT32 x 1 spans 0..4.29497e+09; INT holds -32768..32767" in probs
    assert f"{path}:11: points[1].var: a input is BOOL; BOOL is not" not in probs
    assert any(p.startswith(f"{path}:11: points[1].var:") and "BOOL" in p for p in probs)
    assert f"{path}:17: points[2].var: FLOAT32 needs a REAL or LREAL variable, not INT" in probs


def _gridplc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True,
                          cwd=cwd or os.path.join(HERE, ".."))


def test_check_programs_and_maps_together():
    ok = _gridplc("check", "--format", "short", "tests/fixtures/io/guard.st", "tests/fixtures/io/good.toml")
    assert ok.returncode == 0, ok.stderr
    assert "and 1 I/O map(s)" in ok.stderr
    # variables the field reads or writes are used: no 'never used' warning for them
    assert "'tBat' is never used" not in ok.stdout and "'soc' is never used" not in ok.stdout
    assert "'vBat' is never used" in ok.stdout
    bad = _gridplc("check", "--format", "short", "tests/fixtures/io/guard.st", "tests/fixtures/io/bad.toml")
    assert bad.returncode == 1
    lines = [ln for ln in bad.stdout.splitlines() if "bad.toml" in ln]
    assert len(lines) == 6 and "Traceback" not in bad.stderr
    assert [int(ln.split(":")[1]) for ln in lines] == sorted(int(ln.split(":")[1]) for ln in lines)


def test_check_json_carries_map_problems():
    r = _gridplc("check", "--format", "json", "tests/fixtures/io/guard.st", "tests/fixtures/io/bad.toml")
    assert r.returncode == 1
    items = [d for d in json.loads(r.stdout) if d["code"] == "IOMAP"]
    assert len(items) == 6
    assert {"file": "tests/fixtures/io/bad.toml", "line": 14} == {k: items[1][k] for k in ("file", "line")}


def test_check_a_site_file_brings_its_sources_and_maps(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nsources = ["{os.path.join(FIX, "guard.st")}"]\ninterval = "100ms"\n'
                    f'io_maps = ["{os.path.join(FIX, "bad.toml")}"]\n')
    r = _gridplc("check", "--format", "short", str(site))
    assert r.returncode == 1 and r.stdout.count("bad.toml") == 6, r.stdout + r.stderr


def test_sunspec_names_are_checked_against_the_models(tmp_path):
    path = _write(tmp_path, '[devices.x]\ntransport = "modbus"\nhost = "h"\nsunspec = true\n'
                  '[[points]]\nvar = "Main.soc"\ndevice = "x"\nsunspec = "802.SOC"\n'
                  '[[points]]\nvar = "Main.pSet"\ndevice = "x"\ndirection = "output"\nsunspec = "802.SoC"\n'
                  '[[points]]\nvar = "Main.vBat"\ndevice = "x"\nsunspec = "802.V"\n')
    with pytest.raises(IoMapError) as ei:
        load_iomap(path)
    probs = ei.value.problems
    assert len(probs) == 2
    assert probs[0].startswith(f"{path}:8: points[0].sunspec:") and "SoC" in probs[0]
    assert probs[1] == f"{path}:13: points[1].sunspec: 802.SoC is read-only in its model: it cannot be an output"


def test_the_demo_site_ships_the_shared_dbc_unchanged():
    from tests.stutil import shared_dir
    here = os.path.join(HERE, "..", "io_maps", "dbc", "bms_can.dbc")
    assert open(here, "rb").read() == (shared_dir() / "io" / "bms_can.dbc").read_bytes()
