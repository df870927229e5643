"""Field I/O end to end, real parts on loopback: a program reads the BMS over
a python-can virtual bus and a SunSpec PCS over Modbus TCP, commands power
back; a device killed mid-run makes its inputs stale within the timeout and
the command drops to its safe behaviour; the device comes back and so does
the program. The scan runs on a real clock, the drivers in the I/O thread."""
from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time

import can
import pytest

from runtime.io.config import CanTransmit, Device, IoMap, Point
from runtime.io.iomap import bind_iomap
from runtime.io.manager import IoManager
from runtime.io.quality import GOOD, STALE
from runtime.sim_devices.bms import BmsSimulator
from runtime.sim_devices.plant import Battery
from runtime.sim_devices.sunspec_inverter import InverterSim
from tests.stutil import build, shared_dir

DBC = str(shared_dir() / "io" / "bms_can.dbc")
PROGRAM = """
PROGRAM Main
VAR
    tBat : REAL;                 (* BMS over CAN *)
    bmsSoc : INT;
    pcsSoc : REAL;               (* PCS over SunSpec 802 *)
    bmsOk : BOOL;
    pcsOk : BOOL;
    outPct : REAL;               (* SunSpec 124 OutWRte *)
    mode : INT;                  (* SunSpec 124 StorCtl_Mod *)
END_VAR
bmsOk := IO_OK(tBat) AND IO_OK(bmsSoc);
pcsOk := IO_OK(pcsSoc);
IF bmsOk AND pcsOk THEN
    outPct := 25.0;              (* discharge a quarter of WChaMax *)
    mode := 2;
ELSE
    outPct := 0.0;               (* no trusted data: no power *)
    mode := 0;
END_IF
END_PROGRAM
"""
MS = 1_000_000
_n = itertools.count()


class Loop:
    """An asyncio loop on a thread, for the simulated PCS."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=5.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(3)


class Site:
    def __init__(self):
        self.channel = f"e2e-{os.getpid()}-{next(_n)}"
        self.battery = Battery(soc=0.7)
        self.sim_bus = can.Bus(interface="virtual", channel=self.channel)
        self.bms = BmsSimulator(self.sim_bus, self.battery, DBC, period_s=0.1)
        self.loop = Loop()
        self.pcs = InverterSim(self.battery, port=0)
        self.port = self.loop.run(self.pcs.start())
        self.engine = build(PROGRAM, interval="50ms")
        m = IoMap("e2e.toml", "e2e.toml")
        m.devices["bms"] = Device("bms", "can", interface="virtual", channel=self.channel, dbc=DBC,
                                  timeout_ns=500 * MS, transmit=[CanTransmit("INV_Heartbeat_305", 200 * MS)])
        m.devices["pcs"] = Device("pcs", "modbus", host="127.0.0.1", port=self.port, period_ns=100 * MS,
                                  timeout_ns=300 * MS, sunspec=True, backoff_max_ns=400 * MS)
        m.points = [Point("Main.tBat", "bms", "input", message="BMS_Measurements_356", signal="BatteryTemperature",
                          timeout_ns=500 * MS),
                    Point("Main.bmsSoc", "bms", "input", message="BMS_SocSoh_355", signal="SOC", timeout_ns=500 * MS),
                    Point("Main.pcsSoc", "pcs", "input", sunspec="802.SoC", timeout_ns=500 * MS),
                    Point("Main.outPct", "pcs", "output", sunspec="124.OutWRte", safe="0.0"),
                    Point("Main.mode", "pcs", "output", sunspec="124.StorCtl_Mod", safe="0")]
        bind_iomap(m, self.engine, text="")
        self.t0 = time.monotonic_ns()
        self.io = IoManager(self.engine, [m], lambda: time.monotonic_ns() - self.t0)
        self.stop = threading.Event()
        self.scanner = threading.Thread(target=self._scan, daemon=True)

    def _scan(self):
        last = -1
        while not self.stop.is_set():
            slot = (time.monotonic_ns() - self.t0) // (50 * MS)     # the scan's latched time: its tick
            if slot != last:
                self.engine.scan(slot * 50 * MS)
                last = slot
            self.stop.wait(0.01)

    def start(self):
        self.bms.start()
        self.io.start()
        self.scanner.start()
        return self

    def close(self):
        self.stop.set()
        self.scanner.join(2)
        self.io.stop()
        self.bms.stop()
        self.loop.run(self.pcs.stop())
        self.loop.close()
        self.sim_bus.shutdown()
        self.engine.close()


def wait_for(pred, timeout=5.0, what=""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def site():
    s = Site().start()
    yield s
    s.close()


def test_reads_both_devices_commands_power_and_survives_both_going_away(site):
    e = site.engine
    q = e.quality
    wait_for(lambda: q("Main.tBat")[0] == GOOD and q("Main.pcsSoc")[0] == GOOD, what="both devices GOOD")
    assert abs(e.tag("Main.pcsSoc").get() - 70.0) < 0.2 and e.tag("Main.bmsSoc").get() == 70
    # the command reaches the PCS: a quarter of WChaMax (7000 W) discharging
    wait_for(lambda: abs(site.pcs.setpoint_w() - 1750.0) < 1.0, what="setpoint at the PCS")

    # the BMS falls silent: stale within its 500 ms timeout (+ a scan), command to zero
    site.bms.faults.silent = True
    t_kill = time.monotonic()
    t_stale = wait_for(lambda: q("Main.tBat")[0] == STALE, 2.0, "BMS stale")
    assert t_stale - t_kill < 0.5 + 0.3        # the timeout, a scan, a little slack
    wait_for(lambda: site.pcs.setpoint_w() == 0.0, 2.0, "power cut at the PCS")
    site.bms.faults.silent = False
    wait_for(lambda: q("Main.tBat")[0] == GOOD and abs(site.pcs.setpoint_w() - 1750.0) < 1.0, 3.0, "BMS back")

    # the PCS stops listening: its inputs go stale, and nothing escapes the drivers
    site.loop.run(site.pcs.close_port())
    wait_for(lambda: q("Main.pcsSoc")[0] == STALE, 2.0, "PCS stale")
    assert e.tag("Main.outPct").get() == 0.0
    assert site.io.stats()["pcs"]["state"] != "connected"
    site.loop.run(site.pcs.open_port())
    wait_for(lambda: q("Main.pcsSoc")[0] == GOOD, 5.0, "PCS back")
    wait_for(lambda: abs(site.pcs.setpoint_w() - 1750.0) < 1.0, 3.0, "command rewritten after reconnect")
    assert all(n == 0 for n in site.io.crashes.values())
    assert not e.faults


def test_a_faulted_task_sends_its_safe_values_to_the_field(site):
    e = site.engine
    wait_for(lambda: abs(site.pcs.setpoint_w() - 1750.0) < 1.0, what="setpoint at the PCS")
    e.tag("Main.outPct")            # a division by zero in the next scan faults the task
    from runtime.engine import Fault
    task = e.tasks[0]
    e._stop_task(task, Fault(task.name, "injected", None, e.scan_count, 0))
    wait_for(lambda: site.pcs.setpoint_w() == 0.0, 2.0, "safe values at the PCS")
    assert e.output_image["Main.mode"] == 0
