"""CanDriver end to end: BMS simulator -> python-can virtual bus -> driver -> InputStage,
and OutputImage -> driver -> virtual bus -> decoded on the other side."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import threading
import time

import can
import cantools
import pytest

from runtime.io.can_driver import CanDriver, FrameClock
from runtime.io.config import CanTransmit, Device, Point
from runtime.io.image import InputStage, IoPort, OutputImage
from runtime.io.quality import BAD, GOOD
from runtime.sim_devices.bms import BmsSimulator
from runtime.sim_devices.plant import Battery

BMS_DBC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "io", "bms_can.dbc"))
CTRL_DBC = os.path.join(os.path.dirname(__file__), "fixtures", "can", "ctrl.dbc")
_n = itertools.count()


def channel() -> str:
    return f"test-can-driver-{os.getpid()}-{next(_n)}"


def wait_until(pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.005)
    raise AssertionError("condition not met in time")


class Rig:
    """A driver on its own asyncio loop thread, as the I/O manager runs it."""

    def __init__(self, device: Device, points: list[Point]):
        self.stage, self.outputs = InputStage(), OutputImage()
        self.port = IoPort(self.stage, self.outputs, time.monotonic_ns)
        self.driver = CanDriver(device, points, self.port)
        self.loop = asyncio.new_event_loop()
        self.task = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.seen: dict = {}

    def _run(self):
        self.task = self.loop.create_task(self.driver.run())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except BaseException as e:      # noqa: BLE001 - the test asserts there is none
            self.error = e
        finally:
            self.loop.close()

    def start(self, connected=True):
        self.thread.start()
        if connected:
            wait_until(lambda: self.driver.stats()["state"] == "connected")
        return self

    def stop(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(3.0)
        assert not self.thread.is_alive()
        assert self.error is None, self.error

    def collect(self):
        """Drain the stage into `seen` (path -> last Update) and return what this drain got."""
        got = self.stage.drain()
        self.seen.update(got)
        return got


@contextlib.contextmanager
def rig(device, points, connected=True):
    r = Rig(device, points).start(connected)
    try:
        yield r
    finally:
        r.stop()


def bms_device(ch, **kw):
    return Device("bms", "can", interface="virtual", channel=ch, dbc=BMS_DBC, **kw)


def bms_points(timeout_ns=None):
    return [Point("Main.soc", "bms", "input", message="BMS_SocSoh_355", signal="SOC", timeout_ns=timeout_ns),
            Point("Main.vBat", "bms", "input", message="0x356", signal="BatteryVoltage", timeout_ns=timeout_ns),
            Point("Main.iBat", "bms", "input", message="0x356", signal="BatteryCurrent", timeout_ns=timeout_ns),
            Point("Main.tBat", "bms", "input", message="BMS_Measurements_356", signal="BatteryTemperature",
                  timeout_ns=timeout_ns),
            Point("Main.ccl", "bms", "input", message="BMS_Limits_351", signal="ChargeCurrentLimit"),
            Point("Main.ot", "bms", "input", message="BMS_ProtectionAlarm_359", signal="Prot_OverTemperature")]


@pytest.fixture
def peer():
    buses = []

    def make(ch):
        b = can.Bus(interface="virtual", channel=ch)
        buses.append(b)
        return b
    yield make
    for b in buses:
        b.shutdown()


def test_bms_frames_arrive_as_good_updates_with_engine_clock_timestamps(peer):
    ch = channel()
    with rig(bms_device(ch), bms_points()) as r:
        sim = BmsSimulator(peer(ch), Battery(soc=0.7, current_a=20.0, temp_c=31.5), BMS_DBC)
        before = r.port.clock_ns()
        assert sim.step(0.0) == 6
        wait_until(lambda: (r.collect(), len(r.seen) == 6)[1])
        after = r.port.clock_ns()
        s = r.seen
        assert s["Main.soc"].value == 70 and s["Main.tBat"].value == pytest.approx(31.5)
        assert s["Main.iBat"].value == pytest.approx(-20.0)       # the BMS says > 0 charging
        assert s["Main.vBat"].value == pytest.approx(sim.battery.voltage_v, abs=0.01)
        assert s["Main.ccl"].value == pytest.approx(140.0) and s["Main.ot"].value == 0
        assert all(u.quality == GOOD for u in s.values())
        # frame times are wall-clock stamps mapped onto the monotonic engine clock: allow a
        # millisecond for the two clocks' rates (NTP slewing), never a stamp after arrival
        assert all(before - 1_000_000 <= u.ts_ns <= after for u in s.values())
        # the two signals of one frame carry one timestamp
        assert s["Main.vBat"].ts_ns == s["Main.iBat"].ts_ns
        st = r.driver.stats()
        assert st["frames_rx"] == 6 and st["rx"]["BMS_Measurements_356"]["frames"] == 1
        assert st["rx"]["BMS_Manufacturer_35E"]["frames"] == 1      # in the DBC, unbound: counted only
        assert st["decode_failures"] == 0 and st["unknown_ids"] == 0


def test_a_dead_bms_sends_no_more_good_updates_and_stats_say_stale(peer):
    ch = channel()
    with rig(bms_device(ch), bms_points(timeout_ns=300_000_000)) as r:
        sim = BmsSimulator(peer(ch), Battery(), BMS_DBC, period_s=0.05).start()
        try:
            wait_until(lambda: (r.collect(), len(r.seen) == 6)[1])
            assert r.driver.stats()["rx"]["BMS_SocSoh_355"]["stale"] is False
        finally:
            sim.stop()
        # the frames already on the bus arrive; then nothing more
        wait_until(lambda: r.driver.stats()["frames_rx"] == sum(sim.sent.values()))
        r.collect()
        time.sleep(0.4)
        assert r.collect() == {}
        st = r.driver.stats()
        assert st["rx"]["BMS_SocSoh_355"]["stale"] is True and st["rx"]["BMS_SocSoh_355"]["age_s"] > 0.3
        assert st["state"] == "connected"       # the bus is fine; the device is silent


def test_malformed_and_unknown_frames_leave_the_driver_running_with_counters(peer):
    ch = channel()
    with rig(bms_device(ch), bms_points()) as r:
        bus = peer(ch)
        sim = BmsSimulator(bus, Battery(soc=0.5), BMS_DBC)
        sim.faults.malformed = {"BMS_Measurements_356"}
        sim.faults.unknown_id = 0x7A5
        sim.step(0.0)
        bus.send(can.Message(is_error_frame=True))
        wait_until(lambda: (r.collect(), len(r.seen) == 6)[1])
        for p in ("Main.vBat", "Main.iBat", "Main.tBat"):
            assert (r.seen[p].value, r.seen[p].quality) == (None, BAD)
        assert (r.seen["Main.soc"].value, r.seen["Main.soc"].quality) == (50, GOOD)
        st = wait_until(lambda: (s := r.driver.stats())["error_frames"] == 1 and s)
        assert st["decode_failures"] == 1 and st["unknown_ids"] == 1 and st["last_unknown_id"] == "0x7A5"
        assert "BMS_Measurements_356: 5 bytes, the DBC says 6" == st["last_decode_error"]
        assert st["state"] == "connected"
        sim.faults.malformed = set()
        sim.step(1.0)
        wait_until(lambda: r.collect().get("Main.vBat"))
        assert r.seen["Main.vBat"].quality == GOOD and r.seen["Main.vBat"].value > 40


def test_periodic_keepalive_reaches_the_bms_which_then_allows_charging(peer):
    ch = channel()
    dev = bms_device(ch, transmit=[CanTransmit("INV_Heartbeat_305", period_ns=50_000_000)])
    sim = BmsSimulator(peer(ch), Battery(soc=0.5), BMS_DBC, require_keepalive=True)
    sim.step(0.0)
    assert not sim.keepalive_ok() and sim.signals()["BMS_Limits_351"]["ChargeCurrentLimit"] == 0
    with rig(dev, bms_points()) as r:
        wait_until(lambda: (sim.step(0.1), sim.keepalives >= 3)[1])
        assert sim.keepalive_ok()
        assert sim.signals()["BMS_Limits_351"]["ChargeCurrentLimit"] == pytest.approx(140.0)
        # the count follows the send, which the BMS may already have heard
        st = wait_until(lambda: (s := r.driver.stats()["tx"]["INV_Heartbeat_305"])["sent"] >= 3 and s)
        assert st["refused"] == 0 and st["send_failures"] == 0
    # controller gone: after the timeout the BMS drops its limits again
    sim.step(0.1 + 3.5)
    assert not sim.keepalive_ok() and sim.signals()["BMS_Request_35C"]["ChargeEnable"] == 0


def ctrl_rig(ch, transmit=()):
    dev = Device("pcs", "can", interface="virtual", channel=ch, dbc=CTRL_DBC, transmit=list(transmit))
    pts = [Point("Main.p", "pcs", "output", message="CTRL_Command_4F0", signal="PowerSetpoint"),
           Point("Main.en", "pcs", "output", message="CTRL_Command_4F0", signal="Enable")]
    return rig(dev, pts)


def recv_all(bus, quiet_s=0.15):
    out = []
    while (m := bus.recv(quiet_s)) is not None:
        out.append(m)
    return out


def test_on_change_frames_follow_the_output_image_and_out_of_range_is_refused(peer):
    ch = channel()
    db = cantools.database.load_file(CTRL_DBC)
    bus = peer(ch)
    with ctrl_rig(ch) as r:
        r.outputs.changed()                             # nothing committed yet: nothing to send
        assert recv_all(bus) == []
        assert r.driver.stats()["tx"]["CTRL_Command_4F0"]["waiting"] >= 1
        r.outputs.values.update({"Main.p": 12.5, "Main.en": True})
        r.outputs.changed()
        m = bus.recv(2.0)
        assert (m.arbitration_id, m.is_extended_id) == (0x4F0, False)
        assert db.decode_message(0x4F0, m.data) == {"PowerSetpoint": 12.5, "Enable": 1, "Mode": 0}
        r.outputs.changed()                             # same values: no new frame
        assert recv_all(bus) == []
        r.outputs.values["Main.p"] = -7.0
        r.outputs.changed()
        assert db.decode_message(0x4F0, bus.recv(2.0).data)["PowerSetpoint"] == -7.0
        r.outputs.values["Main.p"] = 5000.0             # the DBC says -3000..3000
        r.outputs.changed()
        assert recv_all(bus) == []
        st = r.driver.stats()["tx"]["CTRL_Command_4F0"]
        assert st["sent"] == 2 and st["refused"] == 1
        assert "PowerSetpoint = 5000 is outside -3000..3000" in st["last_error"]


def test_periodic_frames_keep_their_period_and_extended_ids(peer):
    ch = channel()
    bus = peer(ch)
    with ctrl_rig(ch, [CanTransmit("CTRL_Status_18FF50E5", period_ns=40_000_000, on_change=False),
                       CanTransmit("CTRL_Command_4F0", period_ns=40_000_000)]) as r:
        r.outputs.values.update({"Main.p": 1.0, "Main.en": False})
        r.outputs.changed()
        time.sleep(0.5)
    frames = recv_all(bus, 0.05)
    status = [m for m in frames if m.arbitration_id == 0x18FF50E5]
    cmd = [m for m in frames if m.arbitration_id == 0x4F0]
    assert all(m.is_extended_id and bytes(m.data) == b"\x00\x00" for m in status)
    # ~0.5 s / 40 ms; loose bounds: shared CPUs
    assert 6 <= len(status) <= 16 and len(cmd) >= 6
    gaps = [b.timestamp - a.timestamp for a, b in zip(status, status[1:])]
    # an absolute schedule: a late frame is followed by a shorter gap, so the median holds
    assert statistics.median(gaps) == pytest.approx(0.04, rel=0.3)


def test_an_interface_that_cannot_open_is_retried_and_never_raises():
    dev = Device("bms", "can", interface="no_such_interface", channel="x", dbc=BMS_DBC,
                 backoff_max_ns=200_000_000)
    with rig(dev, bms_points(), connected=False) as r:
        st = wait_until(lambda: (s := r.driver.stats())["connect_failures"] >= 2 and s)
        assert st["state"] in ("disconnected", "connecting") and st["connects"] == 0
        assert "no_such_interface" in st["last_error"]
    assert r.driver.stats()["state"] == "stopped"


def test_frame_clock_keeps_bus_time_and_never_dates_after_arrival():
    c = FrameClock(window_ns=10_000_000_000, max_lag_ns=1_000_000_000)
    epoch = 1_700_000_000.0              # frame stamps in wall time (a double: ~0.24 us steps here)
    base = 5_000_000_000                 # arrivals in another clock
    us = pytest.approx
    # the first frame took 100 us, the second sat 3 ms in a queue, the third 50 us
    assert c.map(epoch, base + 100_000) == base + 100_000
    assert c.map(epoch + 0.010, base + 13_000_000) == us(base + 10_100_000, abs=1000)
    assert c.map(epoch + 0.020, base + 20_050_000) == us(base + 20_050_000, abs=1000)
    assert c.map(epoch + 0.030, base + 30_060_000) <= base + 30_060_000
    # the interface clock steps back by a minute: arrival time, and a fresh estimate
    assert c.map(epoch - 60.0, base + 40_000_000) == base + 40_000_000
    assert c.map(epoch - 59.99, base + 50_007_000) == us(base + 50_000_000, abs=1000)
    # no timestamp from the interface
    assert c.map(0.0, 123) == 123 and c.map(None, 456) == 456


def test_frame_clock_follows_drift_window_by_window():
    c = FrameClock(window_ns=1_000_000_000, max_lag_ns=1_000_000_000)
    # the frame clock runs 1 ms/s slow against the engine clock; the delivery takes 20 us
    arrivals = [i * 100_000_000 for i in range(1, 60)]
    mapped = [c.map(1000.0 + a * (1 - 1e-3) / 1e9, a + 20_000) for a in arrivals]
    assert all(m <= a + 20_000 for m, a in zip(mapped, arrivals))
    # after two windows the error stays under two windows of drift, not growing with the run
    late = [a + 20_000 - m for m, a in zip(mapped[30:], arrivals[30:])]
    assert max(late) < 2_100_000


def test_bms_simulator_faults_are_deterministic_under_step(peer):
    ch = channel()
    tx, rx = peer(ch), peer(ch)
    db = cantools.database.load_file(BMS_DBC, strict=False)
    battery = Battery(soc=0.6)
    sim = BmsSimulator(tx, battery, BMS_DBC, period_s=1.0)

    def frames():
        return {m.arbitration_id: bytes(m.data) for m in recv_all(rx, 0.02)}
    assert sim.step(0.0) == 6 and sim.step(0.5) == 0      # once a period
    first = frames()
    sim.faults.freeze = True
    battery.soc = 0.2
    sim.step(1.0)
    assert frames() == first                              # identical frames although the battery changed
    sim.faults.freeze = False
    sim.faults.silent = True
    assert sim.step(2.0) == 0 and frames() == {}
    sim.faults.silent = False
    sim.faults.forced = {"Prot_OverTemperature": 1}
    sim.step(2.1)                                         # overdue: sent at once on return
    now = frames()
    assert db.decode_message(0x355, now[0x355])["SOC"] == 20
    assert db.decode_message(0x359, now[0x359])["Prot_OverTemperature"] == 1
    assert db.decode_message(0x351, now[0x351])["ChargeCurrentLimit"] == 0
    assert db.decode_message(0x35C, now[0x35C])["ChargeEnable"] == 0

    def dropped(seed):
        s = BmsSimulator(tx, Battery(), BMS_DBC, seed=seed)
        s.faults.drop_probability = 0.5
        sent = [s.step(float(t)) for t in range(20)]
        recv_all(rx, 0.02)
        return sent, s.dropped
    a, b = dropped(7), dropped(7)
    assert a == b and a[1] == 120 - sum(a[0]) and 30 < a[1] < 90


def test_keepalive_stops_when_the_scans_stop(peer):
    """The I/O thread alive is not the controller alive: with no scan for a
    second, the heartbeat is held, so the BMS sees the controller is gone."""
    ch = channel()
    dev = bms_device(ch, transmit=[CanTransmit("INV_Heartbeat_305", period_ns=50_000_000)])
    listener = peer(ch)
    with rig(dev, []) as r:
        r.outputs.committed_ns = time.monotonic_ns()            # a scan just ran
        assert wait_until(lambda: listener.recv(0.2)) is not None
        r.outputs.committed_ns = time.monotonic_ns() - 2_000_000_000   # last scan 2 s ago
        time.sleep(0.1)
        while listener.recv(0.0) is not None:                 # drop what was in flight
            pass
        assert listener.recv(0.3) is None
        assert r.driver.stats()["tx"]["INV_Heartbeat_305"]["held_scans_stalled"] >= 3
        r.outputs.committed_ns = time.monotonic_ns()            # scans again: heartbeat again
        assert wait_until(lambda: listener.recv(0.2)) is not None
