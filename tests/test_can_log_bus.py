"""A CAN capture as the live bus (`log = "FILE"` on an io_map CAN device):
frames come when their recorded time comes, the controller's frames are
dropped, and after the capture the inputs go stale as with a silent BMS."""
from __future__ import annotations

import os
import time

from runtime.io.can_log import LogBus, write_candump
from runtime.io.quality import GOOD, STALE
from runtime.live import LiveRuntime
from runtime.site import load_site
from tests.stutil import shared_dir

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "can")


class _Clock:
    def __init__(self):
        self.t = 100.0
        self.slept = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.slept.append(round(s, 6))
        self.t += s


def test_frames_come_at_their_recorded_times_then_silence(tmp_path):
    p = tmp_path / "c.log"
    write_candump(str(p), [(0.0, 0x356, b"\x01", False), (0.25, 0x355, b"\x02", False), (1.0, 0x356, b"\x03", False)])
    clk = _Clock()
    bus = LogBus(str(p), clock=clk)
    bus._sleep = clk.sleep
    m = bus.recv(0.1)
    assert (m.arbitration_id, bytes(m.data), m.timestamp) == (0x356, b"\x01", 100.0) and clk.slept == []
    assert bus.recv(0.1) is None and clk.slept == [0.1]          # 0x355 is due at 100.25: not yet
    m = bus.recv(0.5)
    assert m.arbitration_id == 0x355 and abs(clk.t - 100.25) < 1e-9
    bus.send(m)
    assert bus.recv(1.0).arbitration_id == 0x356 and abs(clk.t - 101.0) < 1e-9
    assert bus.recv(0.1) is None and bus.finished and bus.sent == 1 and bus.received == 3
    bus.shutdown()


def test_an_unreadable_line_ends_the_replay_with_the_reason(tmp_path):
    p = tmp_path / "bad.log"
    p.write_text("(1.000000) can0 356#01\n(1.100000) can0 35Z#zz\n")
    clk = _Clock()
    bus = LogBus(str(p), clock=clk)
    bus._sleep = clk.sleep
    assert bus.recv(0.1) is not None
    assert bus.recv(0.5) is None and bus.finished and "bad.log:2" in bus.error


PROGRAM = """
PROGRAM Main
VAR tBat : REAL; seen : REAL; END_VAR
seen := tBat;
END_PROGRAM
"""


def test_gridplc_run_replays_a_capture_as_the_bms(tmp_path):
    (tmp_path / "prog.st").write_text(PROGRAM)
    dbc = shared_dir() / "io" / "bms_can.dbc"
    (tmp_path / "map.toml").write_text(
        f'[devices.bms]\ntransport = "can"\ndbc = "{dbc}"\nlog = "{os.path.join(HERE, "bms.log")}"\ntimeout = "1s"\n'
        '[[points]]\nvar = "Main.tBat"\ndevice = "bms"\nmessage = "BMS_Measurements_356"\n'
        'signal = "BatteryTemperature"\n')
    site = tmp_path / "site.toml"
    site.write_text('[site]\nsources = ["prog.st"]\ninterval = "10ms"\nstate_dir = "state"\nio_maps = ["map.toml"]\n')
    rt = LiveRuntime(load_site(str(site)))
    rt.start()
    try:
        seen = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            q = rt.engine.quality("Main.tBat")[0]
            v = rt.engine.tag("Main.seen").get()
            if not seen or seen[-1] != (q, v):
                seen.append((q, v))
            if q == STALE:
                break
            time.sleep(0.02)
        values = [round(v, 1) for q, v in seen if q == GOOD]
        # the capture's two 0x356 frames (25.5 then 25.6 degC, a second apart), then silence: stale
        assert values == [25.5, 25.6], seen
        assert seen[-1][0] == STALE, seen
        bms = rt.io.stats()["bms"]
        assert bms["replay_finished"] is True and bms["frames_rx"] == 4 and bms["unknown_ids"] == 1
    finally:
        rt.stop()


def test_a_scenario_replays_the_devices_own_capture(tmp_path):
    from runtime.scenario import load_scenario, run_scenario
    (tmp_path / "prog.st").write_text(PROGRAM)
    dbc = shared_dir() / "io" / "bms_can.dbc"
    (tmp_path / "map.toml").write_text(
        f'[devices.bms]\ntransport = "can"\ndbc = "{dbc}"\nlog = "{os.path.join(HERE, "bms.log")}"\ntimeout = "1s"\n'
        '[[points]]\nvar = "Main.tBat"\ndevice = "bms"\nmessage = "BMS_Measurements_356"\n'
        'signal = "BatteryTemperature"\n')
    sc = tmp_path / "sc.toml"
    sc.write_text('[scenario]\nsources = ["prog.st"]\ninterval = "10ms"\nduration = "3s"\nio_map = "map.toml"\n'
                  '[[input]]\nkind = "can_log"\ndevice = "bms"\n'
                  '[[expect]]\nat = "500ms"\nexpect = "Main.seen > 25.45 AND Main.seen < 25.55"\n'
                  '[[expect]]\nat = "1500ms"\nexpect = "Main.seen > 25.55 AND IO_OK(Main.tBat)"\n'
                  '[[expect]]\nat = "2500ms"\nexpect = "NOT IO_OK(Main.tBat)"\n')
    r = run_scenario(load_scenario(str(sc)))
    assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]
