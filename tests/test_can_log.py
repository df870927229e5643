"""CAN captures: candump -L / -ta and Vector ASC reading, replay on the virtual clock, writing."""
from __future__ import annotations

import os

import can
import pytest

from runtime.io.can_codec import CanCodec
from runtime.io.can_log import CanLogError, LogReplay, log_duration_s, read_log, write_candump
from runtime.io.config import Point
from runtime.io.quality import BAD, GOOD
from runtime.sim_devices.bms import BmsSimulator
from runtime.sim_devices.plant import Battery

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "can")
BMS_DBC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "io", "bms_can.dbc"))

# the four data frames every fixture holds (error and remote frames are skipped)
FRAMES = [(0.0, 0x356, bytes.fromhex("5A1485FFFF00"), False),
          (0.001, 0x355, bytes.fromhex("57006400"), False),
          (1.0, 0x356, bytes.fromhex("581488FF0001"), False),
          (1.5, 0x18FF50E5, bytes.fromhex("0102"), True)]


@pytest.mark.parametrize("name", ["bms.log", "bms_ta.log", "bms.asc"])
def test_each_format_yields_data_frames_timed_from_the_first(name):
    assert list(read_log(os.path.join(HERE, name))) == FRAMES


def test_a_listing_without_timestamps_is_refused_with_its_line():
    with pytest.raises(CanLogError, match=r"plain.log:1: a candump listing without timestamps cannot be replayed"):
        list(read_log(os.path.join(HERE, "plain.log")))


def test_malformed_lines_are_reported_by_file_and_line(tmp_path):
    p = tmp_path / "broken.log"
    p.write_text("(1.000000) can0 356#5A1485FFFF00\n(1.100000) can0 356#5A14 extra words\n")
    it = read_log(str(p))
    assert next(it)[1] == 0x356
    with pytest.raises(CanLogError, match=r"broken.log:2: cannot read this candump -L line"):
        next(it)
    q = tmp_path / "bad_ta.log"
    q.write_text(" (1.000000)  can0  356   [6]  5A 14 85\n")
    with pytest.raises(CanLogError, match=r"bad_ta.log:1: \[6\] bytes announced, 3 given"):
        list(read_log(str(q)))
    r = tmp_path / "notes.txt"
    r.write_text("hello world\n")
    with pytest.raises(CanLogError, match=r"notes.txt:1: not a candump \(-L or -ta\) or Vector ASC line"):
        list(read_log(str(r)))
    with pytest.raises(CanLogError, match="cannot read"):
        list(read_log(str(tmp_path / "absent.log")))


def test_write_candump_is_read_back_by_python_can_and_read_log(tmp_path):
    p = str(tmp_path / "out.log")
    msgs = [(10.0, 0x356, b"\x01\x02", None), (10.25, 0x18FF50E5, b"", True),
            can.Message(timestamp=10.5, arbitration_id=0x35C, data=b"\xc0\x00", is_extended_id=False)]
    assert write_candump(p, msgs, channel="vcan1") == 3
    assert open(p).read().splitlines()[0] == "(10.000000) vcan1 356#0102"
    back = list(can.CanutilsLogReader(p))
    assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in back] == [
        (0x356, False, b"\x01\x02"), (0x18FF50E5, True, b""), (0x35C, False, b"\xc0\x00")]
    assert [f[0] for f in read_log(p)] == [0.0, 0.25, 0.5]
    assert log_duration_s(p) == 0.5


def codec():
    return CanCodec(BMS_DBC, [Point("Main.vBat", "bms", "input", message="0x356", signal="BatteryVoltage"),
                              Point("Main.tBat", "bms", "input", message="0x356", signal="BatteryTemperature"),
                              Point("Main.soc", "bms", "input", message="BMS_SocSoh_355", signal="SOC")])


def test_replay_maps_log_time_onto_the_virtual_clock():
    start = 5_000_000_000
    rp = LogReplay(os.path.join(HERE, "bms.log"), codec(), start_ns=start, speed=2.0)
    assert rp.next_ns == start and not rp.done
    assert rp.updates_until(start - 1) == []
    first = rp.updates_until(start)
    assert [(u.path, u.value, u.ts_ns) for u in first] == [("Main.vBat", 52.1, start), ("Main.tBat", 25.5, start)]
    # at speed 2 the frame 1 ms into the log comes 0.5 ms into the run
    assert rp.next_ns == start + 500_000
    ups = rp.updates_until(start + 400_000_000)
    assert [(u.path, u.value, u.ts_ns) for u in ups] == [("Main.soc", 87, start + 500_000)]
    assert rp.updates_until(start + 400_000_000) == []          # nothing comes twice
    ups = rp.updates_until(start + 10_000_000_000)
    assert [(u.path, u.value, u.quality, u.ts_ns) for u in ups] == [
        ("Main.vBat", 52.08, GOOD, start + 500_000_000), ("Main.tBat", 25.6, GOOD, start + 500_000_000)]
    assert rp.done and rp.next_ns is None and rp.frames_replayed == 4
    assert rp.codec.unknown_ids == 1            # the 29-bit frame is not in this DBC


def test_replay_of_a_recorded_bms_run_with_a_malformed_frame(tmp_path):
    bus = can.Bus(interface="virtual", channel=f"test-can-log-{os.getpid()}")
    try:
        battery = Battery(soc=0.8, power_w=5_000.0)      # 5 kW out, ten minutes of plant per log second
        sim = BmsSimulator(bus, battery, BMS_DBC, period_s=1.0, record=[])
        for t in range(0, 11):
            sim.faults.malformed = {"BMS_Measurements_356"} if t == 5 else set()
            sim.step(float(t))
            battery.step(600.0)
    finally:
        bus.shutdown()
    p = str(tmp_path / "run.log")
    assert write_candump(p, sim.record) == 66
    rp = LogReplay(p, codec())
    seen = []
    for t_ms in range(0, 11_000, 10):           # a scan every 10 ms
        seen += [(u.ts_ns, u.path, u.value, u.quality) for u in rp.updates_until(t_ms * 1_000_000)]
    soc = [v for _, p_, v, _ in seen if p_ == "Main.soc"]
    assert len(soc) == 11 and soc[0] == 80 and soc == sorted(soc, reverse=True) and soc[-1] < 30
    bad = [(ts, p_) for ts, p_, v, q in seen if q == BAD]
    assert bad == [(5_000_000_000, "Main.vBat"), (5_000_000_000, "Main.tBat")]
    assert all(ts % 1_000_000_000 == 0 for ts, *_ in seen)


def test_replay_refuses_a_bad_speed_and_a_file_that_is_not_a_log(tmp_path):
    with pytest.raises(ValueError, match="speed must be > 0"):
        LogReplay(os.path.join(HERE, "bms.log"), codec(), speed=0)
    with pytest.raises(CanLogError, match="plain.log:1"):
        LogReplay(os.path.join(HERE, "plain.log"), codec())
