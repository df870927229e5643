"""The loopback socketcand hub: python-can clients sharing a bus, the wire protocol,
the CAN driver over it (and its reconnect when the hub goes away), the command line."""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time

import can
import pytest

from runtime.io import can_cli
from runtime.io.can_driver import CanDriver
from runtime.io.config import Device, Point
from runtime.io.image import InputStage, IoPort, OutputImage
from runtime.io.quality import GOOD
from runtime.io.socketcand_hub import HubThread
from runtime.sim_devices.bms import BmsSimulator
from runtime.sim_devices.plant import Battery

BMS_DBC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "io", "bms_can.dbc"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def hub():
    h = HubThread().start()
    yield h
    h.stop()


@pytest.fixture
def client():
    made = []

    def make(port, ch="can0"):
        b = can.Bus(interface="socketcand", host="127.0.0.1", port=port, channel=ch)
        made.append(b)
        return b
    yield make
    for b in made:
        b.shutdown()


def test_two_python_can_clients_exchange_frames_on_one_bus_name(hub, client):
    a, b = client(hub.port), client(hub.port)
    other = client(hub.port, "can1")
    a.send(can.Message(arbitration_id=0x356, data=bytes.fromhex("5A1485FFFF00"), is_extended_id=False))
    m = b.recv(2.0)
    assert (m.arbitration_id, m.is_extended_id, bytes(m.data)) == (0x356, False, bytes.fromhex("5A1485FFFF00"))
    assert abs(m.timestamp - time.time()) < 5.0
    b.send(can.Message(arbitration_id=0x18FF50E5, data=b"\x01\x02", is_extended_id=True))
    b.send(can.Message(arbitration_id=0x305, data=b"", is_extended_id=False))
    got = [a.recv(2.0), a.recv(2.0)]
    assert [(x.arbitration_id, x.is_extended_id, bytes(x.data)) for x in got] == [
        (0x18FF50E5, True, b"\x01\x02"), (0x305, False, b"")]
    # no echo to the sender, nothing across bus names
    assert a.recv(0.1) is None and b.recv(0.1) is None and other.recv(0.1) is None
    assert hub.hub.stats.buses == {"can0": 3, "can1": 0}
    per = sorted((c["bus"], c["rx"], c["tx"]) for c in hub.hub.client_stats())
    assert per == [("can0", 1, 2), ("can0", 2, 1), ("can1", 0, 0)]


def read_until(sock, pattern, timeout=2.0):
    sock.settimeout(timeout)
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.search(pattern, buf)
        if m:
            return m
        buf += sock.recv(4096)
    raise AssertionError(f"no {pattern!r} in {buf!r}")


def test_wire_protocol_greeting_replies_and_frame_format(hub, client):
    s = socket.create_connection(("127.0.0.1", hub.port))
    try:
        assert s.recv(64) == b"< hi >"
        s.sendall(b"< rawmode >")
        assert s.recv(64) == b"< error open a bus first >"
        s.sendall(b"< open vcan0 >")
        assert s.recv(64) == b"< ok >"
        s.sendall(b"< echo >")
        assert s.recv(64) == b"< echo >"
        s.sendall(b"< rawmode >")
        assert s.recv(64) == b"< ok >"
        peer = client(hub.port, "vcan0")
        peer.send(can.Message(arbitration_id=0x356, data=bytes.fromhex("5A1485FFFF00"), is_extended_id=False))
        read_until(s, rb"< frame 356 \d+\.\d{6} 5A1485FFFF00 >")
        peer.send(can.Message(arbitration_id=0x1ABCDE, data=b"\x00", is_extended_id=True))
        read_until(s, rb"< frame 001ABCDE \d+\.\d{6} 00 >")
        # commands glued together in one segment, bytes without leading zeros
        s.sendall(b"< send 123 2 a b >< send 124 0 >")
        m1, m2 = peer.recv(2.0), peer.recv(2.0)
        assert (m1.arbitration_id, bytes(m1.data), m2.arbitration_id, bytes(m2.data)) == (0x123, b"\x0a\x0b", 0x124, b"")
        # a malformed send is counted; in raw mode there is no reply python-can would misread
        s.sendall(b"< send 123 3 a b >< send 800 1 0 >")
        assert peer.recv(0.2) is None
        assert hub.hub.stats.bad_commands == 3
    finally:
        s.close()


def test_frames_are_not_lost_to_a_client_joining_meanwhile(hub, client):
    a = client(hub.port)
    stop = threading.Event()

    def flood():
        i = 0
        while not stop.is_set():
            a.send(can.Message(arbitration_id=0x100 + i % 16, data=bytes([i % 256]), is_extended_id=False))
            i += 1
            time.sleep(0.001)
    t = threading.Thread(target=flood)
    t.start()
    try:
        # each join completes although frames keep coming (they are held past the < ok >)
        late = [client(hub.port) for _ in range(3)]
        assert all(b.recv(2.0) is not None for b in late)
    finally:
        stop.set()
        t.join()


def run_driver(device, points):
    stage, outputs = InputStage(), OutputImage()
    port = IoPort(stage, outputs, time.monotonic_ns)
    drv = CanDriver(device, points, port)
    loop = asyncio.new_event_loop()
    task = loop.create_task(drv.run())
    th = threading.Thread(target=lambda: (loop.run_until_complete(asyncio.wait([task])), loop.close()), daemon=True)
    th.start()

    def stop():
        loop.call_soon_threadsafe(task.cancel)
        th.join(5.0)
        assert task.cancelled()
    return drv, stage, stop


def wait_until(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_driver_over_the_hub_reconnects_after_the_hub_restarts(client):
    h = HubThread().start()
    port = h.port
    dev = Device("bms", "can", interface="socketcand", channel="can0", dbc=BMS_DBC,
                 can_options={"host": "127.0.0.1", "port": port}, backoff_max_ns=200_000_000)
    pts = [Point("Main.soc", "bms", "input", message="BMS_SocSoh_355", signal="SOC")]
    drv, stage, stop = run_driver(dev, pts)
    try:
        wait_until(lambda: drv.stats()["state"] == "connected")
        sim = BmsSimulator(client(port), Battery(soc=0.42), BMS_DBC)
        sim.step(0.0)
        u = wait_until(lambda: stage.drain().get("Main.soc"))
        assert (u.value, u.quality) == (42, GOOD)
        h.stop()
        st = wait_until(lambda: (s := drv.stats())["state"] == "disconnected" and s)
        assert st["disconnects"] == 1 and "receive" in st["last_error"]
        time.sleep(0.3)
        assert drv.stats()["connect_failures"] >= 1          # the hub is down: refused, retried
        h = HubThread(port).start()
        wait_until(lambda: drv.stats()["state"] == "connected")
        sim = BmsSimulator(client(port), Battery(soc=0.43), BMS_DBC)
        sim.step(0.0)
        u = wait_until(lambda: stage.drain().get("Main.soc"))
        assert (u.value, u.quality) == (43, GOOD)
        assert drv.stats()["reconnects"] == 1
    finally:
        stop()
        h.stop()
    assert drv.stats()["state"] == "stopped"


def test_module_command_prints_its_port_and_serves(client):
    p = subprocess.Popen([sys.executable, "-m", "runtime.io.socketcand_hub", "--port", "0"], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        m = re.fullmatch(r"socketcand hub on 127\.0\.0\.1:(\d+)\n", line)
        assert m, line
        a, b = client(int(m[1])), client(int(m[1]))
        a.send(can.Message(arbitration_id=0x35C, data=b"\xc0\x00", is_extended_id=False))
        assert bytes(b.recv(2.0).data) == b"\xc0\x00"
    finally:
        p.terminate()
        p.wait(5.0)
        p.stdout.close()


def test_can_hub_subcommand_is_registered():
    ap = argparse.ArgumentParser()
    can_cli.register(ap.add_subparsers())
    args = ap.parse_args(["can-hub", "--port", "0"])
    assert args.port == 0 and args.fn is can_cli._can_hub
    assert ap.parse_args(["can-hub"]).port == 29536


def test_a_port_in_use_is_a_one_line_error(capsys):
    from runtime.io.socketcand_hub import run
    h = HubThread().start()
    try:
        assert run(h.port) == 2
    finally:
        h.stop()
    assert re.fullmatch(r"can-hub: cannot listen on 127\.0\.0\.1:\d+: .+\n", capsys.readouterr().err)
