"""The drivers in a process of their own (IoManager(separate_process=True)),
real parts on loopback: the program reads a BMS over CAN (a socketcand hub:
python-can's virtual bus does not cross processes) and a SunSpec PCS over
Modbus TCP, and commands power back; the child also serves the program to
a Modbus SCADA, whose writes go through the runtime's write path. Losing a
device, the scans stalling, and the I/O process itself dying are seen by
the program as they would be with the drivers in-process."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import can
import pytest
from pymodbus.client import AsyncModbusTcpClient

from runtime.io import manager
from runtime.io.config import CanTransmit, Device, IoMap, ModbusServer, Point, ServerPoint
from runtime.io.iomap import bind_iomap
from runtime.io.manager import IoManager
from runtime.io.quality import GOOD, STALE
from runtime.io.socketcand_hub import HubThread
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
    limit : INT := 25;           (* SCADA: discharge in % of WChaMax *)
    setMode : SINT;              (* SCADA *)
END_VAR
bmsOk := IO_OK(tBat) AND IO_OK(bmsSoc);
pcsOk := IO_OK(pcsSoc);
IF bmsOk AND pcsOk THEN
    outPct := INT_TO_REAL(limit);
    mode := 2;
ELSE
    outPct := 0.0;               (* no trusted data: no power *)
    mode := 0;
END_IF
END_PROGRAM
"""
MS = 1_000_000


class Loop:
    """An asyncio loop on a thread, for the simulated PCS and the SCADA client."""

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
    def __init__(self, timeout_ms: int):
        t = timeout_ms * MS
        self.hub = HubThread().start()
        self.battery = Battery(soc=0.7)
        self.sim_bus = can.Bus(interface="socketcand", host="127.0.0.1", port=self.hub.port, channel="can0",
                               tcp_tune=True)
        self.bms = BmsSimulator(self.sim_bus, self.battery, DBC, period_s=0.1)
        self.loop = Loop()
        self.pcs = InverterSim(self.battery, port=0)
        self.loop.run(self.pcs.start())
        self.engine = build(PROGRAM, interval="50ms")
        m = IoMap("proc.toml", "proc.toml")
        m.devices["bms"] = Device("bms", "can", interface="socketcand", channel="can0", dbc=DBC, timeout_ns=t,
                                  can_options={"host": "127.0.0.1", "port": self.hub.port},
                                  transmit=[CanTransmit("INV_Heartbeat_305", 100 * MS)])
        m.devices["pcs"] = Device("pcs", "modbus", host="127.0.0.1", port=self.pcs.port, period_ns=100 * MS,
                                  timeout_ns=300 * MS, sunspec=True, backoff_max_ns=400 * MS)
        m.points = [Point("Main.tBat", "bms", "input", message="BMS_Measurements_356", signal="BatteryTemperature",
                          timeout_ns=t),
                    Point("Main.bmsSoc", "bms", "input", message="BMS_SocSoh_355", signal="SOC", timeout_ns=t),
                    Point("Main.pcsSoc", "pcs", "input", sunspec="802.SoC", timeout_ns=t),
                    Point("Main.outPct", "pcs", "output", sunspec="124.OutWRte", safe="0.0"),
                    Point("Main.mode", "pcs", "output", sunspec="124.StorCtl_Mod", safe="0")]
        bind_iomap(m, self.engine, text="")
        # added after binding, which refuses a writable input: the engine's write path refuses it too
        m.modbus_server = ModbusServer("127.0.0.1", 0, 1, [
            ServerPoint("Main.outPct", "holding", 0, "INT16", scale=0.1),
            ServerPoint("Main.limit", "holding", 1, "INT16", writable=True),
            ServerPoint("Main.setMode", "holding", 2, "INT16", writable=True),
            ServerPoint("Main.pcsSoc", "holding", 3, "INT16", writable=True)])
        self.t0 = time.monotonic_ns()
        self.events: list[tuple[str, dict]] = []
        self.io = IoManager(self.engine, [m], self.clock_ns, events=lambda k, d: self.events.append((k, d)),
                            separate_process=True)
        self.stop = threading.Event()
        self.scanning = threading.Event()
        self.scanning.set()
        self.scanner = threading.Thread(target=self._scan, daemon=True)

    def clock_ns(self) -> int:
        return time.monotonic_ns() - self.t0

    def _scan(self):
        last = -1
        while not self.stop.is_set():
            slot = self.clock_ns() // (50 * MS)       # the scan's latched time: its tick
            if slot != last and self.scanning.is_set():
                self.engine.scan(slot * 50 * MS)
                self.io.after_scan()
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
        self.hub.stop()
        self.engine.close()

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


def wait_for(pred, timeout=5.0, what=""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def site():
    s = Site(500).start()
    yield s
    s.close()


def good(site, *paths) -> bool:
    return all(site.engine.quality(p)[0] == GOOD for p in paths)


def test_field_io_through_the_io_process(site):
    e = site.engine
    q = e.quality
    assert site.io.process.pid not in (None, os.getpid()) and site.io.drivers == {}
    wait_for(lambda: good(site, "Main.tBat", "Main.pcsSoc"), what="both devices GOOD")
    assert abs(e.tag("Main.pcsSoc").get() - 70.0) < 0.2 and e.tag("Main.bmsSoc").get() == 70
    # stamped in the engine's clock by the child: recent, not in another epoch
    for p in ("Main.tBat", "Main.pcsSoc"):
        assert 0 <= site.clock_ns() - q(p)[1] < 1_000 * MS
    wait_for(lambda: abs(site.pcs.setpoint_w() - 1750.0) < 1.0, what="setpoint at the PCS")
    wait_for(lambda: site.bms.keepalives > 3, 2.0, "keep-alives at the BMS")

    # the scans stall: the child's CAN driver holds the keep-alive (committed_ns crossed over)
    site.scanning.clear()
    time.sleep(1.3)
    held = site.bms.keepalives
    time.sleep(0.4)
    assert site.bms.keepalives == held
    site.scanning.set()
    wait_for(lambda: site.bms.keepalives > held, 2.0, "keep-alives again")

    # the BMS falls silent: stale within its 500 ms timeout (+ a scan), command to zero
    site.bms.faults.silent = True
    t_kill = time.monotonic()
    t_stale = wait_for(lambda: q("Main.tBat")[0] == STALE, 2.0, "BMS stale")
    assert t_stale - t_kill < 0.5 + 0.3
    wait_for(lambda: site.pcs.setpoint_w() == 0.0, 2.0, "power cut at the PCS")
    site.bms.faults.silent = False
    wait_for(lambda: good(site, "Main.tBat") and abs(site.pcs.setpoint_w() - 1750.0) < 1.0, 3.0, "BMS back")

    # the PCS stops listening: stale, the driver's stats (from the child) say so; then back
    site.loop.run(site.pcs.close_port())
    wait_for(lambda: q("Main.pcsSoc")[0] == STALE, 2.0, "PCS stale")
    assert e.tag("Main.outPct").get() == 0.0
    wait_for(lambda: site.io.stats()["pcs"]["state"] != "connected", 2.0, "PCS not connected in stats")
    site.loop.run(site.pcs.open_port())
    wait_for(lambda: good(site, "Main.pcsSoc"), 5.0, "PCS back")
    wait_for(lambda: abs(site.pcs.setpoint_w() - 1750.0) < 1.0, 3.0, "command rewritten after reconnect")
    assert site.io.stats()["bms"]["state"] == "connected"
    assert all(n == 0 for n in site.io.crashes.values())
    assert not e.faults
    assert "io_process_exit" not in site.kinds()


def test_the_scada_server_in_the_io_process_writes_through_the_runtime(site):
    wait_for(lambda: site.io.stats()["modbus_server"].get("state") == "listening", what="SCADA server up")
    port = int(site.io.stats()["modbus_server"]["listen"].rsplit(":", 1)[1])
    wait_for(lambda: good(site, "Main.tBat", "Main.pcsSoc") and site.engine.tag("Main.outPct").get() == 25.0,
             what="program commanding")

    async def scada():
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        await c.connect()
        try:
            served = None
            for _ in range(100):            # the scan's values reach the child within a scan or two
                r = await c.read_holding_registers(0, count=2, device_id=1)
                served = None if r.isError() else r.registers
                if served == [250, 25]:
                    break
                await asyncio.sleep(0.02)
            codes = []
            for addr, value in ((1, 10), (2, 300), (3, 50)):
                r = await c.write_register(addr, value, device_id=1)
                codes.append(r.exception_code if r.isError() else None)
            return served, codes
        finally:
            c.close()

    served, codes = site.loop.run(scada(), timeout=10)
    assert served == [250, 25]                       # outPct 25.0 at scale 0.1, limit 25
    # queued; 300 is no SINT (the child checks the variable's type: 03); an input: the engine refuses (04)
    assert codes == [None, 3, 4]
    wait_for(lambda: "input bound to the field" in (site.io.stats()["modbus_server"]["last_error"] or ""), 2.0,
             "the engine's refusal in the server's stats")
    wait_for(lambda: site.engine.tag("Main.limit").get() == 10, 2.0, "write applied by the scan")
    wait_for(lambda: abs(site.pcs.setpoint_w() - 700.0) < 1.0, 3.0, "the written limit at the PCS")
    assert site.engine.tag("Main.setMode").get() == 0


def test_a_dead_io_process_makes_its_inputs_stale_and_comes_back(monkeypatch):
    monkeypatch.setattr(manager, "RESTART_PAUSE_S", 0.2)
    s = Site(5_000).start()            # timeouts far longer than the test: STALE comes from the runtime
    try:
        wait_for(lambda: good(s, "Main.tBat", "Main.pcsSoc"), what="both devices GOOD")
        old = s.io.process.pid
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: s.engine.quality("Main.tBat")[0] == STALE and s.engine.quality("Main.pcsSoc")[0] == STALE,
                 2.0, "inputs STALE")
        wait_for(lambda: s.engine.tag("Main.outPct").get() == 0.0, 1.0, "no power without trusted data")
        exits = [d for k, d in s.events if k == "io_process_exit"]
        assert len(exits) == 1 and exits[0]["pid"] == old and exits[0]["returncode"] == -signal.SIGKILL
        assert s.io.stats()["pcs"]["state"] in ("restarting", "starting", "connecting", "connected")
        wait_for(lambda: good(s, "Main.tBat", "Main.pcsSoc"), 10.0, "inputs GOOD from a new process")
        assert s.io.process.pid not in (None, old) and s.io.process.restarts == 1
        wait_for(lambda: abs(s.pcs.setpoint_w() - 1750.0) < 1.0, 3.0, "command at the PCS again")
    finally:
        proc = s.io.process.proc
        s.close()
    assert proc.returncode == 0                    # told to stop, it stopped: not killed
    assert s.io.stats()["pcs"]["state"] == "stopped"
    assert [k for k in s.kinds() if k.startswith("io_process")] == \
        ["io_process_start", "io_process_exit", "io_process_start"]


def test_the_io_process_does_not_keep_the_real_time_priority_it_was_started_with():
    e = build(PROGRAM, interval="50ms")
    with socket.socket() as s:              # a port nobody listens on: the driver just retries
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = IoMap("rt.toml", "rt.toml")
    m.devices["pcs"] = Device("pcs", "modbus", host="127.0.0.1", port=port, sunspec=True)
    m.points = [Point("Main.pcsSoc", "pcs", "input", sunspec="802.SoC")]
    bind_iomap(m, e, text="")
    io = IoManager(e, [m], time.monotonic_ns, separate_process=True)
    refused = []

    def start_real_time():          # as a scan thread at SCHED_FIFO would
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except OSError as err:
            refused.append(err)
            return
        io.start()
    t = threading.Thread(target=start_real_time)
    t.start()
    t.join()
    try:
        if refused:
            pytest.skip(f"SCHED_FIFO not permitted here: {refused[0]}")
        assert os.sched_getscheduler(io.process.pid) == os.SCHED_OTHER
    finally:
        io.stop()
        e.close()


def test_drivers_the_io_process_cannot_build_are_logged_and_retried(monkeypatch, tmp_path):
    monkeypatch.setattr(manager, "RESTART_PAUSE_S", 0.2)
    e = build(PROGRAM, interval="50ms")
    m = IoMap("bad.toml", "bad.toml")
    m.devices["bms"] = Device("bms", "can", interface="socketcand", channel="can0", dbc=str(tmp_path / "gone.dbc"))
    m.points = [Point("Main.tBat", "bms", "input", message="BMS_Measurements_356", signal="BatteryTemperature")]
    events = []
    io = IoManager(e, [m], time.monotonic_ns, events=lambda k, d: events.append((k, d)), separate_process=True)
    io.start()                      # returns: the runtime runs on, its inputs waiting
    try:
        wait_for(lambda: sum(k == "io_process_exit" for k, _ in events) >= 2, 5.0, "two failed starts")
        failed = [d["error"] for k, d in events if k == "io_process_failed"]
        assert failed and "gone.dbc" in failed[0]
        pauses = [d["restart_in_s"] for k, d in events if k == "io_process_exit"]
        assert pauses[:2] == [0.2, 0.4]            # dying young: the pause doubles
        assert [d["returncode"] for k, d in events if k == "io_process_exit"][:2] == [1, 1]
    finally:
        io.stop()
        e.close()
