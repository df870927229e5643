"""Modbus driver benchmark (not a test): prints figures, asserts nothing.

    python bench/modbus_bench.py [--seconds 5] [--scans 2000] [--rounds 2] [--points 100] [--realtime PRIO]
                                 [--kinds idle,steady,changing,heavy]

1. Throughput: points/s the driver decodes and publishes from one device and
   from ten, polling back to back (period 1 ns); each device is a pymodbus
   server on 127.0.0.1 in a separate process, so the figure is the driver's.
2. Scan jitter: ../shared/bench/site_protect.st as a 10 ms task on the real
   scheduler (the live runtime's switch interval and frozen heap), alone,
   then with an IoManager polling ten devices into bound inputs of the
   program, its drivers on the I/O thread (in-process) or in a process of
   their own (IoManager(separate_process=True), the runtime keeping only
   the receiver and sender threads): at 100 ms (a site's usual rate) with
   steady values, then with every value changing at every read (the worst
   case: each poll publishes every point), then changing at 10 ms (a heavy
   case). Runs of the kinds are interleaved; the medians of their p99 start
   jitter are compared with the idle one. For the I/O process, the runtime's
   receiver cost is printed too (batches, updates, time per update).
3. What the I/O costs the runtime: the scan's latch of 1,000 bound inputs
   by how many changed; the I/O process's receiver per update (columns into
   the input stage, against one Update per point); on the scan thread, the
   output listener (a copy of the output image, an Event) and after_scan,
   through a running IoManager(separate_process=True); the framing
   (ipc.Link) of a batch of input updates, both ways.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plc_lang.driver import compile_project  # noqa: E402
from plc_lang.source import SourceFile  # noqa: E402
from runtime.engine import Engine  # noqa: E402
from runtime.io.config import Device, IoMap, Point  # noqa: E402
from runtime.io.image import InputStage, OutputImage  # noqa: E402
from runtime.io.ipc import Link, encode  # noqa: E402
from runtime.io.manager import IoManager  # noqa: E402
from runtime.live import SWITCH_INTERVAL_S  # noqa: E402
from runtime.scheduler import Scheduler  # noqa: E402

SITE_PROTECT = os.path.join(os.path.dirname(ROOT), "shared", "bench", "site_protect.st")
REGISTERS = 1000


# ---------------------------------------------------------------- the devices (child process)
class _Flat:
    """Holding registers 0..REGISTERS-1, all mapped. Changing: every value is
    different at every read (the worst case: each poll publishes every
    point); steady: values stay (the driver then only confirms them)."""

    def __init__(self, changing: bool):
        self.changing = changing
        self.n = 0

    async def read(self, table, address, count, peer):
        if table != "holding" or address + count > REGISTERS:
            return 2
        if self.changing:
            self.n = (self.n + 1) & 0x3FFF
        return [(a + self.n) & 0x7FFF for a in range(address, address + count)]

    async def write(self, table, address, values, peer):
        return 2


def _serve(n: int, changing: bool, conn) -> None:
    from runtime.io.modbus_server import TcpRegisterServer

    async def main():
        servers = [TcpRegisterServer(_Flat(changing)) for _ in range(n)]
        conn.send([await s.start() for s in servers])
        await asyncio.Event().wait()
    asyncio.run(main())


class Devices:
    def __init__(self, n: int, changing: bool = True):
        parent, child = multiprocessing.Pipe()
        self.proc = multiprocessing.Process(target=_serve, args=(n, changing, child), daemon=True)
        self.proc.start()
        self.ports = parent.recv()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join()


def _map(ports: list[int], points: int, period_ns: int, var_of) -> IoMap:
    m = IoMap("bench")
    for d, port in enumerate(ports):
        name = f"dev{d}"
        m.devices[name] = Device(name, "modbus", host="127.0.0.1", port=port, period_ns=period_ns,
                                 timeout_ns=1_000_000_000)
        for k in range(points):
            m.points.append(Point(var_of(d, k), name, "input", table="holding", address=k, type="INT16",
                                  scale=0.01))
    return m


class _Sink:
    """What IoManager needs of an engine, for the throughput runs."""

    def __init__(self):
        self.input_stage = InputStage()
        self.io_outputs = OutputImage()


# ---------------------------------------------------------------- 1. throughput
def throughput(n_devices: int, points: int, seconds: float) -> None:
    devs = Devices(n_devices)
    try:
        sink = _Sink()
        m = _map(devs.ports, points, 1, lambda d, k: f"D{d}.p{k}")
        io = IoManager(sink, [m], time.monotonic_ns)
        io.start()
        drain = threading.Event()

        def drainer():          # the engine drains once per scan; do so every 10 ms
            while not drain.wait(0.01):
                sink.input_stage.drain()
        t = threading.Thread(target=drainer, daemon=True)
        t.start()
        time.sleep(1.0)         # connect, first polls
        n0 = sum(s["points_read"] for s in io.stats().values())
        t0 = time.monotonic()
        time.sleep(seconds)
        stats = io.stats()
        dt = time.monotonic() - t0
        n1 = sum(s["points_read"] for s in stats.values())
        io.stop()
        drain.set()
        reqs = sum(s["reads_per_poll"] for s in stats.values())
        rtt = max(s["rtt_ms"]["avg"] for s in stats.values())
        print(f"throughput, {n_devices} device(s) x {points} INT16 points ({reqs} reads per round), polling "
              f"back to back: {(n1 - n0) / dt:,.0f} points/s; mean round trip {rtt:.2f} ms")
    finally:
        devs.close()


# ---------------------------------------------------------------- 2. jitter
def _engine() -> Engine:
    text = open(SITE_PROTECT).read().replace("T#100ms", "T#10ms")
    r = compile_project([SourceFile("site_protect.st", text)])
    assert r.ok, [d.message for d in r.diagnostics if d.is_error]
    return Engine(r.program, watchdog_s=5.0)


def _module_input(d: int, k: int) -> str:
    """Scalars of the program the devices' points are bound to (10 x 100 fit in 8 x 48 x 4)."""
    n = d * 100 + k
    rack, rest = divmod(n, 48 * 4)
    module, field = divmod(rest, 4)
    return f"Main.data[{rack % 8 + 1}, {module}].{('vMax', 'vMin', 'tMax', 'tMin')[field]}"


@dataclass
class Polling:
    label: str
    devices: int
    points: int
    period_ns: int
    changing: bool
    separate: bool = False       # IoManager(separate_process=True)


def jitter(scans: int, polling: Polling | None, rt: int | None = None) -> int:
    """p99 start jitter in ns."""
    eng = _engine()
    devs = io = None
    sched_start = [0]
    if polling is not None:
        devs = Devices(polling.devices, polling.changing)
        m = _map(devs.ports, polling.points, polling.period_ns, _module_input)
        for p in m.points:
            p.var = eng.declare_input(p.var, 3_000_000_000)
        io = IoManager(eng, [m], lambda: time.monotonic_ns() - sched_start[0], separate_process=polling.separate)
    done = threading.Event()
    count = [0]

    def tick(now, due):
        eng.scan(now, due)
        if io is not None:
            io.after_scan()         # as LiveRuntime._tick does
        count[0] += 1
        if count[0] >= scans:
            done.set()
    sched = Scheduler(eng.tasks, tick, realtime_priority=rt)
    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        if io is not None:
            io.start()
        if polling is not None:
            time.sleep(1.0)
        gc.collect()
        gc.freeze()             # as LiveRuntime.start does
        sched.start()
        if io is not None:
            sched_start[0] = sched.start_ns
        done.wait()
        sched.stop()
        st = sched.stats[eng.tasks[0].name]
        t = eng.tasks[0]
        what = ("idle" if polling is None else polling.label) + (f" [{sched.realtime}]" if rt is not None else "")
        extra = ""
        if io is not None:
            s = io.stats()
            extra = f"; {sum(x.get('points_per_s', 0) for x in s.values()):,.0f} points/s polled"
            pr = io.process
            if pr is not None and pr.updates:
                extra += (f"; receiver: {pr.batches} batches, {pr.updates / pr.batches:.0f} updates each, "
                          f"{pr.rx_busy_ns / pr.updates / 1e3:.2f} us per update, {pr.paced_waits} waited for a gap, "
                          f"restarts {pr.restarts}")
        print(f"site_protect at 10 ms, {scans} scans, {what}: start jitter p50 {st.percentile_ns(0.5) / 1e3:.0f} us, "
              f"p99 {st.percentile_ns(0.99) / 1e3:.0f} us, max {st.jitter_max_ns / 1e3:.0f} us; overruns "
              f"{st.overruns}; scan exec mean {t.exec_total_ns / t.scans / 1e3:.0f} us, max {t.exec_max_ns / 1e3:.0f} us{extra}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        return st.percentile_ns(0.99)
    finally:
        if io is not None:
            io.stop()
        if devs is not None:
            devs.close()
        sys.setswitchinterval(old)
        gc.unfreeze()
        eng.close()


# ---------------------------------------------------------------- 3. costs
def _median_ns(fn, n: int = 5000) -> float:
    xs = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        xs.append(time.perf_counter_ns() - t0)
    return statistics.median(xs)


def costs(points: int) -> None:
    import socket
    devs = Devices(1, changing=False)
    eng = _engine()
    io = None
    try:
        m = _map(devs.ports, points, 100_000_000, _module_input)
        for p in m.points:
            p.var = eng.declare_input(p.var, 3_000_000_000)
        outs = [f"Main.rackI[{r}]" for r in range(1, 9)] + ["Main.dispatch"]
        for o in outs:
            eng.declare_output(o, "0.0")
        io = IoManager(eng, [m], time.monotonic_ns, separate_process=True)
        io.start()
        eng.scan(0)
        listener = _median_ns(eng.io_outputs.changed)
        after = _median_ns(io.after_scan)
        print(f"scan thread, I/O process: output listener ({len(outs)} outputs) {listener / 1e3:.1f} us, "
              f"after_scan (no Modbus server) {after / 1e3:.1f} us (medians)")
    finally:
        if io is not None:
            io.stop()
        devs.close()
        eng.close()
    a, b = socket.socketpair()
    tx, rx = Link(a), Link(b)
    flat = []
    for k in range(points):
        flat += (k, 3.3 + k * 1e-3, 0, time.monotonic_ns())
    send, recv = [], []
    for _ in range(2000):           # one at a time: the socket's buffer holds a few dozen
        t0 = time.perf_counter_ns()
        tx.send(("i", flat))
        t1 = time.perf_counter_ns()
        rx.recv()
        send.append(t1 - t0)
        recv.append(time.perf_counter_ns() - t1)
    send, recv = statistics.median(send), statistics.median(recv)
    print(f"framing, a batch of {points} input updates: send {send / 1e3:.1f} us, receive and decode "
          f"{recv / 1e3:.1f} us ({len(encode(('i', flat)))} bytes)")
    tx.close()
    rx.close()


def latch_costs(n: int = 1000) -> None:
    """What the scan pays to latch n bound inputs, by how many were updated
    since the last scan (staged outside the timing: that is the drivers')."""
    from runtime.io.image import Update
    eng = _engine()
    try:
        paths = [eng.declare_input(_module_input(d, k), 3_000_000_000) for d in range(n // 100) for k in range(100)]
        eng.input_stage.publish([Update(p, 1.0, 0, 0) for p in paths])
        eng.scan(0)
        t = 0
        parts = []
        for k in (0, 1, 100, n):
            xs = []
            for i in range(400 if k < n else 100):
                t += 10_000_000
                if k:
                    eng.input_stage.publish_many(paths[:k], [1.0 + i % 7] * k, [0] * k, [t] * k)
                t0 = time.perf_counter_ns()
                eng._latch_inputs(t)
                xs.append(time.perf_counter_ns() - t0)
            parts.append(f"{k} updated {statistics.median(xs) / 1e3:.0f} us")
        print(f"latch, {n} bound inputs per scan (medians): " + ", ".join(parts))
    finally:
        eng.close()


def receiver_costs(points: int) -> None:
    """The I/O process's receiver, one batch of `points` updates from its
    message into the input stage: as columns (what IoProcess does) and, for
    comparison, as one Update per point (what it did)."""
    from runtime.io.image import Update
    paths = [f"Main.p{k}" for k in range(points)]
    flat = []
    for k in range(points):
        flat += (k, 3.3 + k * 1e-3, 0, 1_000_000 + k)
    stage = InputStage()
    index = paths.__getitem__

    def columns():
        stage.publish_many(list(map(index, flat[0::4])), flat[1::4], flat[2::4], flat[3::4])
        stage.take()

    def updates():
        stage.publish([Update(paths[k], v, q, ts) for k, v, q, ts in zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4])])
        stage.take()
    a, b = _median_ns(columns, 3000), _median_ns(updates, 3000)
    print(f"receiver, a batch of {points} updates into the stage: as columns {a / 1e3:.1f} us "
          f"({a / points:.0f} ns per update), as Updates {b / 1e3:.1f} us ({b / points:.0f} ns per update)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0, help="throughput measuring time per run")
    ap.add_argument("--scans", type=int, default=2000, help="scans per jitter run (10 ms each)")
    ap.add_argument("--rounds", type=int, default=2, help="jitter runs of each kind, interleaved")
    ap.add_argument("--points", type=int, default=100, help="points per device")
    ap.add_argument("--realtime", type=int, metavar="PRIO",
                    help="run the scan thread at SCHED_FIFO PRIO (other processes then cannot delay it)")
    ap.add_argument("--kinds", default="steady,changing,heavy",
                    help="polling kinds to compare with idle: steady, changing (both at 100 ms), heavy (10 ms)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-jitter", action="store_true")
    ap.add_argument("--skip-costs", action="store_true")
    a = ap.parse_args()
    if not a.skip_throughput:
        throughput(1, a.points, a.seconds)
        throughput(10, a.points, a.seconds)
    if not a.skip_costs:
        latch_costs()
        receiver_costs(a.points)
        costs(a.points)
    if a.skip_jitter:
        return
    n, pts = 10, a.points
    want = set(a.kinds.split(","))
    kinds = {"idle": None}
    for key, period, changing, what in (("steady", 100_000_000, False, "steady points every 100 ms"),
                                        ("changing", 100_000_000, True, "changing points every 100 ms"),
                                        ("heavy", 10_000_000, True, "changing points every 10 ms")):
        if key in want:
            for separate in (False, True):
                label = f"polling {n} x {pts} {what}, " + ("drivers in the I/O process" if separate else "in-process")
                kinds[label] = Polling(label, n, pts, period, changing, separate)
    p99 = {k: [] for k in kinds}
    for _ in range(a.rounds):          # interleaved, so a noisy neighbour hits every kind alike
        for k, polling in kinds.items():
            p99[k].append(jitter(a.scans, polling, a.realtime))
    idle = statistics.median(p99["idle"])
    for k, v in p99.items():
        m = statistics.median(v)
        print(f"median p99 {k}: {m / 1e3:.0f} us" + ("" if k == "idle" else f", {m / max(idle, 1):.2f} x idle"))


if __name__ == "__main__":
    main()
