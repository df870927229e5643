"""CAN input path benchmark (not a test): prints figures, asserts nothing.

    python bench/can_bench.py [--frames N] [--burst N] [--no-socketcand]

Latency: a 0x356 frame is sent on a python-can bus (one every 1 ms, each
carrying its sequence number in BatteryVoltage) and timed until its Update
is in the InputStage (publish returns), through the live CanDriver with its
reader thread: µs p50 / p99 / max. On the `virtual` bus, and through the
loopback socketcand hub (two TCP hops; clients with tcp_tune, i.e. TCP_NODELAY,
unless --no-tcp-tune). Throughput: a burst of frames sent
as fast as the sender can, counted as decoded Updates per second at the
stage; and CanCodec.decode alone, without a bus. The scan-level latency
(frame to the program's view) adds up to one scan period on top.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import can  # noqa: E402
import cantools  # noqa: E402

from runtime.io.can_codec import CanCodec  # noqa: E402
from runtime.io.can_driver import CanDriver  # noqa: E402
from runtime.io.config import Device, Point  # noqa: E402
from runtime.io.image import InputStage, IoPort, OutputImage  # noqa: E402
from runtime.io.socketcand_hub import HubThread  # noqa: E402

DBC = os.path.join(os.path.dirname(ROOT), "shared", "io", "bms_can.dbc")
POINTS = [Point("Main.vBat", "bms", "input", message="0x356", signal="BatteryVoltage"),
          Point("Main.iBat", "bms", "input", message="0x356", signal="BatteryCurrent"),
          Point("Main.tBat", "bms", "input", message="0x356", signal="BatteryTemperature")]


class TimedStage(InputStage):
    """Records when each sequence number (BatteryVoltage x 100) was published."""

    def __init__(self):
        super().__init__()
        self.at: dict[int, int] = {}
        self.count = 0

    def publish(self, updates):
        now = time.perf_counter_ns()
        super().publish(updates)
        for u in updates:
            if u.path == "Main.vBat" and u.value is not None:
                self.at[round(u.value * 100)] = now
        self.count += 1


class Rig:
    def __init__(self, device):
        self.stage = TimedStage()
        self.driver = CanDriver(device, POINTS, IoPort(self.stage, OutputImage(), time.monotonic_ns))
        self.loop = asyncio.new_event_loop()
        self.task = self.loop.create_task(self.driver.run())
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(asyncio.wait([self.task])),
                                       daemon=True)
        self.thread.start()
        end = time.monotonic() + 10
        while self.driver.stats()["state"] != "connected" and time.monotonic() < end:
            time.sleep(0.01)

    def close(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(5)


def frames(msg, n):
    return [can.Message(arbitration_id=0x356, is_extended_id=False,
                        data=msg.encode({"BatteryVoltage": (i % 30000) / 100, "BatteryCurrent": -1.0,
                                         "BatteryTemperature": 25.0})) for i in range(n)]


def latency(rig, bus, msgs, gap_s=0.001):
    sent = {}
    for i, m in enumerate(msgs):
        t = time.perf_counter_ns()
        bus.send(m)
        sent[i % 30000] = t
        # pace without sleeping through the scheduler's coarse ticks
        end = time.perf_counter() + gap_s
        while time.perf_counter() < end:
            time.sleep(0)
    time.sleep(0.2)
    lat = sorted((rig.stage.at[k] - t) / 1000 for k, t in sent.items() if k in rig.stage.at)
    return lat, len(sent) - len(lat)


def throughput(rig, bus, msgs):
    before = rig.stage.count
    t0 = time.perf_counter()
    for m in msgs:
        bus.send(m)
    send_s = time.perf_counter() - t0
    end = time.monotonic() + 30
    while rig.stage.count - before < len(msgs) and time.monotonic() < end:
        time.sleep(0.001)
    return (rig.stage.count - before) / (time.perf_counter() - t0), len(msgs) / send_s


def show(name, lat, lost):
    if not lat:
        print(f"{name}: no frames arrived")
        return
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(f"{name}: frame sent -> Update in stage  p50 {p(0.5):.0f} us  p99 {p(0.99):.0f} us  "
          f"max {lat[-1]:.0f} us  mean {statistics.fmean(lat):.0f} us  ({len(lat)} frames, {lost} missing)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000, help="frames for the latency figures")
    ap.add_argument("--burst", type=int, default=20000, help="frames for the throughput figure")
    ap.add_argument("--no-socketcand", action="store_true")
    ap.add_argument("--no-tcp-tune", dest="tcp_tune", action="store_false",
                    help="socketcand clients without TCP_NODELAY (python-can's default)")
    a = ap.parse_args()
    # python-can's socketcand bus warns on every TCP segment that splits a frame
    logging.getLogger("can").setLevel(logging.ERROR)
    msg = cantools.database.load_file(DBC, strict=False).get_message_by_name("BMS_Measurements_356")
    print(f"python {sys.version.split()[0]}, python-can {can.__version__}, cantools {cantools.__version__}")

    codec = CanCodec(DBC, POINTS)
    data = frames(msg, 1)[0].data
    n = 50000
    t0 = time.perf_counter()
    for _ in range(n):
        codec.decode(0x356, data, 0)
    dt = time.perf_counter() - t0
    print(f"CanCodec.decode alone: {dt / n * 1e6:.1f} us per frame, {n / dt:,.0f} frames/s")

    ch = f"can-bench-{os.getpid()}"
    rig = Rig(Device("bms", "can", interface="virtual", channel=ch, dbc=DBC))
    bus = can.Bus(interface="virtual", channel=ch)
    try:
        show("virtual bus", *latency(rig, bus, frames(msg, a.frames)))
        got, offered = throughput(rig, bus, frames(msg, a.burst))
        print(f"virtual bus: {got:,.0f} frames/s decoded and published (sender offered {offered:,.0f} frames/s)")
    finally:
        bus.shutdown()
        rig.close()

    if not a.no_socketcand:
        hub = HubThread().start()
        # tcp_tune sets TCP_NODELAY: without it Nagle and delayed ACKs hold small frames up to 40 ms
        opts = {"host": "127.0.0.1", "port": hub.port, "tcp_tune": a.tcp_tune}
        rig = Rig(Device("bms", "can", interface="socketcand", channel="can0", dbc=DBC, can_options=opts))
        bus = can.Bus(interface="socketcand", channel="can0", **opts)
        try:
            time.sleep(0.1)
            name = f"socketcand hub{'' if a.tcp_tune else ' (no tcp_tune)'}"
            show(name, *latency(rig, bus, frames(msg, max(200, a.frames // 2))))
            got, offered = throughput(rig, bus, frames(msg, a.burst // 4))
            print(f"{name}: {got:,.0f} frames/s decoded and published "
                  f"(sender offered {offered:,.0f} frames/s)")
        finally:
            bus.shutdown()
            rig.close()
            hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
