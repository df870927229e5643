"""OPC UA client points benchmark (not a test): prints figures, asserts nothing.

    python bench/opcua_client_bench.py [--changes N] [--periods MS ...] [--points N]

An asyncua server runs in a thread of its own (as another process would);
the driver runs in the main loop against a real InputStage/OutputImage.

1. Input latency: from a server-side value change (the moment the write is
   handed to the server's loop) to the driver's `publish` into the stage,
   per publishing interval. Report-by-exception means the server holds a
   change until its next publishing tick, so expect about half the interval
   on average and up to one interval, plus the processing.
2. Output latency: from `OutputImage.changed()` (what the scan thread calls
   after a commit) to the server's Good answer to the write.
3. Driver CPU per notification: many points changing at once, the loop's
   CPU time per Update published.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from asyncua import Server, ua  # noqa: E402

from runtime.io.config import Device, Point  # noqa: E402
from runtime.io.image import InputStage, IoPort, OutputImage  # noqa: E402
from runtime.io.opcua_client import OpcUaClientDriver  # noqa: E402


class TimedStage(InputStage):
    """Notes when each update reaches the stage (the driver's side of the door)."""

    def __init__(self):
        super().__init__()
        self.arrivals: list[tuple[int, object]] = []
        self.event = threading.Event()

    def publish(self, updates):
        updates = list(updates)
        now = time.monotonic_ns()
        for u in updates:
            self.arrivals.append((now, u))
        super().publish(updates)
        self.event.set()


class FieldServer:
    def __init__(self, points: int):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"opc.tcp://127.0.0.1:{self.port}/bench/"
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.vars = []
        asyncio.run_coroutine_threadsafe(self._start(points), self.loop).result(30)

    async def _start(self, points: int):
        self.server = Server()
        await self.server.init()
        self.server.set_endpoint(self.url)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.idx = await self.server.register_namespace("urn:gridplc:bench")
        for i in range(points):
            self.vars.append(await self.server.nodes.objects.add_variable(
                f"ns={self.idx};s=P{i}", f"P{i}", ua.Variant(0.0, ua.VariantType.Double)))
        self.out = await self.server.nodes.objects.add_variable(
            f"ns={self.idx};s=Out", "Out", ua.Variant(0.0, ua.VariantType.Float))
        await self.out.set_writable()
        await self.server.start()

    def write_soon(self, i: int, value: float):
        """Hand a change to the server's loop without waiting for it."""
        asyncio.run_coroutine_threadsafe(
            self.vars[i].write_value(ua.Variant(value, ua.VariantType.Double)), self.loop)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def input_latency(srv: FieldServer, period_ms: float, changes: int) -> list[float]:
    stage = TimedStage()
    port = IoPort(stage, OutputImage(), time.monotonic_ns)
    dev = Device("bench", "opcua", endpoint=srv.url, period_ns=int(period_ms * 1e6), timeout_ns=2_000_000_000)
    drv = OpcUaClientDriver(dev, [Point("Main.p0", "bench", "input", node=f"ns={srv.idx};s=P0")], port)
    task = asyncio.create_task(drv.run())
    lat = []
    try:
        while not stage.arrivals:
            await asyncio.sleep(0.01)
        for k in range(changes):
            value = float(k + 1) + period_ms / 1000
            stage.arrivals.clear()
            t0 = time.monotonic_ns()
            srv.write_soon(0, value)
            while not any(u.value == value for _, u in stage.arrivals):
                await asyncio.sleep(0.0005)
            t1 = next(t for t, u in stage.arrivals if u.value == value)
            lat.append((t1 - t0) / 1e6)
            await asyncio.sleep(0.003 + (k % 7) * period_ms / 7000)    # spread over the publishing phase
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return lat


async def output_latency(srv: FieldServer, writes: int) -> list[float]:
    outputs = OutputImage()
    port = IoPort(TimedStage(), outputs, time.monotonic_ns)
    dev = Device("bench", "opcua", endpoint=srv.url, period_ns=50_000_000)
    drv = OpcUaClientDriver(dev, [Point("Main.o", "bench", "output", node=f"ns={srv.idx};s=Out")], port)
    task = asyncio.create_task(drv.run())
    lat = []
    try:
        while drv.stats()["state"] != "connected":
            await asyncio.sleep(0.01)
        for k in range(writes):
            n = drv.stats()["writes_ok"]
            outputs.values["Main.o"] = float(k + 1)
            t0 = time.monotonic_ns()
            threading.Thread(target=outputs.changed).start()   # as the scan thread would
            while drv.stats()["writes_ok"] == n:
                await asyncio.sleep(0.0002)
            lat.append((time.monotonic_ns() - t0) / 1e6)
            await asyncio.sleep(0.002)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return lat


async def notification_cpu(srv: FieldServer, rounds: int) -> float:
    stage = TimedStage()
    port = IoPort(stage, OutputImage(), time.monotonic_ns)
    n = len(srv.vars)
    dev = Device("bench", "opcua", endpoint=srv.url, period_ns=50_000_000, timeout_ns=2_000_000_000)
    points = [Point(f"Main.p{i}", "bench", "input", node=f"ns={srv.idx};s=P{i}") for i in range(n)]
    drv = OpcUaClientDriver(dev, points, port)
    task = asyncio.create_task(drv.run())
    try:
        while len({u.path for _, u in stage.arrivals}) < n:
            await asyncio.sleep(0.01)
        got = drv.stats()["notifications"]
        cpu0 = time.thread_time()
        for r in range(rounds):
            for i in range(n):
                srv.write_soon(i, 1000.0 + r)
            target = got + n * (r + 1)
            while drv.stats()["notifications"] < target:
                await asyncio.sleep(0.001)
        cpu = time.thread_time() - cpu0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return cpu / (n * rounds) * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--periods", type=float, nargs="*", default=[10.0, 50.0, 100.0])
    ap.add_argument("--points", type=int, default=200)
    args = ap.parse_args()
    srv = FieldServer(args.points)
    try:
        print(f"1. input latency, server change -> Update in the stage ({args.changes} changes)")
        print(f"   {'period':>8} {'mean':>8} {'p50':>8} {'p95':>8} {'max':>8}   (ms)")
        for p in args.periods:
            lat = asyncio.run(input_latency(srv, p, args.changes))
            print(f"   {p:8.0f} {statistics.mean(lat):8.2f} {pct(lat, 50):8.2f} {pct(lat, 95):8.2f} {max(lat):8.2f}")
        lat = asyncio.run(output_latency(srv, args.changes))
        print(f"2. output latency, OutputImage.changed() -> Good write answer ({args.changes} writes)")
        print(f"   mean {statistics.mean(lat):.2f}  p50 {pct(lat, 50):.2f}  p95 {pct(lat, 95):.2f}  "
              f"max {max(lat):.2f} ms")
        us = asyncio.run(notification_cpu(srv, 10))
        print(f"3. driver CPU per notification, {args.points} points changing together: {us:.1f} µs "
              f"(client loop thread: asyncua decoding + the driver)")
    finally:
        srv.close()


if __name__ == "__main__":
    main()
