"""Runs the drivers of the I/O maps: on a thread of the runtime, or in a
process of their own.

The scan never waits on them: drivers publish into the engine's input
stage and read the output image (image.py). A driver that crashes is
logged and restarted after a pause; its points go stale by their
timeouts meanwhile, which the program sees.

In-process, a DriverSet runs every driver in one asyncio loop on a
thread. Its Python work (pymodbus framing, decoding) takes the
GIL from the scan thread: polling 10 Modbus devices x 100 points every
100 ms made a 10 ms scan's p99 start jitter 2-3x idle (bench/modbus_bench.py).

With `separate_process=True` (what the live runtime does unless the site
file says `[io] process = false`) the same DriverSet runs in a child process
(child.py, messages in ipc.py), which knows no engine, and the runtime
keeps two light threads (IoProcess):

- the receiver hands each batch of the child's input updates to one
  `input_stage.publish_many`, as the columns the message carries (a batch
  holds whole groups, so a group stays atomic), answers the Modbus
  server's writes through `queue_write`, and passes events and stats on.
  That holds the GIL for well under a microsecond per update (an Update
  object per point took about 2 us); a batch that would not be done before
  the next scan is due waits for the end of that scan (after_scan), so the
  work falls in the gap between scans rather than on a scan's start, and
  the updates still make the scan after;
- the sender ships what the scan thread left it: the output image when it
  changed (the scan thread's listener copies it and sets an Event, a few
  microseconds), the Modbus servers' values after each scan (after_scan),
  `committed_ns` at least every COMMIT_PERIOD_S (a CAN keep-alive stops
  when the scans stall), and the clock offset when it moves.

The live runtime calls after_scan() after every scan; a caller that does
not gets an unpaced receiver.

The child stamps inputs with `time.monotonic_ns() - offset`, the engine's
clock: CLOCK_MONOTONIC is system-wide, and the offset is measured against
the `clock_ns` given here, so that clock must count CLOCK_MONOTONIC
nanoseconds from some start (the live scheduler's does). A child that dies
or falls silent is logged, every input it fed turns STALE at once, and a
new one starts after a pause that doubles while they keep dying young.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback

from ..tags import TagError
from .config import Device, IoMap
from .image import IoPort, Update
from .ipc import PICKLE, ChildConfig, Link, ProtocolError
from .quality import BAD, GOOD, STALE

# transport -> "module:Class"; each class takes (device, points, port)
DRIVERS = {
    "can": "runtime.io.can_driver:CanDriver",
    "modbus": "runtime.io.modbus_client:ModbusDriver",
    "opcua": "runtime.io.opcua_client:OpcUaClientDriver",
    "clock": "runtime.io.clock_driver:ClockDriver",
}
RESTART_PAUSE_S = 1.0            # a crashed driver, a dead I/O process: wait this long first
RESTART_PAUSE_MAX_S = 30.0
STABLE_S = 10.0                  # an I/O process up this long restarts after the first pause again
COMMIT_PERIOD_S = 0.1            # committed_ns reaches the I/O process at least this often
RX_TIMEOUT_S = 0.5
SILENT_S = 5.0                   # the I/O process sends stats every 0.5 s; this long without a word: killed
START_WAIT_S = 10.0
OFFSET_SAMPLE_NS = 20_000        # a clock-offset sample spread wider than this (a thread switch) is retaken
OFFSET_TOLERANCE_NS = 50_000
PACE_GUARD_NS = 500_000          # the receiver starts a batch only this long (+ its work) before a scan is due
UPDATE_COST_NS = 500             # what one update costs the receiver (columns into the stage), with margin


def driver_class(transport: str):
    mod, cls = DRIVERS[transport].split(":")
    return getattr(importlib.import_module(mod), cls)


def plan(maps: list[IoMap]) -> list[tuple[str, IoMap, Device | None]]:
    """(name, map, device) of every driver the maps need; device None is
    the map's Modbus server."""
    out = []
    names: set[str] = set()
    for m in maps:
        for name, dev in m.devices.items():
            if m.points_of(name) or dev.transmit:
                out.append((name, m, dev))
                names.add(name)
        if m.modbus_server is not None and m.modbus_server.points:
            name = "modbus_server" if "modbus_server" not in names else f"modbus_server:{m.shown}"
            out.append((name, m, None))
            names.add(name)
    return out


class DriverSet:
    """The drivers of the maps on one IoPort, in one asyncio loop on a thread
    of its own. `server_types` holds, per Modbus server in map order, the
    served variables' types (the server refuses a value the type cannot hold)."""

    def __init__(self, maps: list[IoMap], port: IoPort, queue_write, server_types: list[dict], events=None):
        self.port = port
        self.events = events or (lambda kind, data: None)
        self.drivers: dict[str, object] = {}
        self.crashes: dict[str, int] = {}
        self.servers: list = []
        for name, m, dev in plan(maps):
            if dev is not None:
                drv = driver_class(dev.transport)(dev, m.points_of(name), port)
            else:
                from .modbus_server import ScadaServer
                drv = ScadaServer(m.modbus_server, queue_write, types=server_types[len(self.servers)])
                self.servers.append(drv)
            self.drivers[name] = drv
            self.crashes[name] = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        if not self.drivers:
            return
        # asyncua prints a traceback at ERROR for every lost connection; the
        # driver's stats and the inputs' quality already say it, once
        logging.getLogger("asyncua").setLevel(logging.CRITICAL)
        # python-can's socketcand bus warns on every frame split across TCP segments
        logging.getLogger("can").setLevel(logging.ERROR)
        self._thread = threading.Thread(target=self._run, name="gridplc-io", daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._tasks = [loop.create_task(self._supervise(n, d)) for n, d in self.drivers.items()]
        self._started.set()
        try:
            loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _supervise(self, name: str, drv) -> None:
        while True:
            try:
                await drv.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a driver bug must not take the runtime down
                self.crashes[name] += 1
                self.events("io_driver_crash", {"device": name, "error": f"{type(e).__name__}: {e}",
                                                "trace": traceback.format_exc(limit=5)})
                await asyncio.sleep(RESTART_PAUSE_S)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._loop is None or self._thread is None:
            return
        for t in self._tasks:
            self._loop.call_soon_threadsafe(t.cancel)
        self._thread.join(timeout_s)
        self._loop = None

    def stats(self) -> dict:
        out = {}
        for name, d in self.drivers.items():
            try:
                s = dict(d.stats())
            except Exception as e:  # noqa: BLE001 - stats must never break status
                s = {"state": "unknown", "stats_error": str(e)}
            s["crashes"] = self.crashes[name]
            out[name] = s
        return out


class IoManager:
    """The drivers of the maps for one engine. `.drivers` and `.port` are
    the driver objects and their port in-process; with separate_process
    they live in the child (`.drivers` is empty, `.port` None, `.process`
    the IoProcess). `.crashes` and `stats()` work in both."""

    def __init__(self, engine, maps: list[IoMap], clock_ns, events=None, queue_write=None, *,
                 separate_process: bool = False):
        self.engine = engine
        self.maps = maps
        self.events = events or (lambda kind, data: None)
        queue_write = queue_write or engine.queue_write
        servers = [m.modbus_server for _, m, dev in plan(maps) if dev is None]
        served_tags = [{sp.var: engine.tag(sp.var) for sp in s.points} for s in servers]
        # per Modbus server, (var, tag) of what it serves: after_scan reads them for it
        self._served = [list(t.items()) for t in served_tags]
        types = [{v: t.type for v, t in tt.items()} for tt in served_tags]
        self.process: IoProcess | None = None
        self._set: DriverSet | None = None
        if separate_process:
            self.port = None
            self.drivers: dict[str, object] = {}
            self.process = IoProcess(engine, maps, clock_ns, self.events, queue_write, types)
        else:
            self.port = IoPort(engine.input_stage, engine.io_outputs, clock_ns)
            self._set = DriverSet(maps, self.port, queue_write, types, self.events)
            self.drivers = self._set.drivers

    @property
    def crashes(self) -> dict[str, int]:
        return self.process.crashes if self.process is not None else self._set.crashes

    def after_scan(self) -> None:
        """On the scan thread, after every scan: hand the Modbus servers this
        scan's values (a handful of reads; a server encodes them when a
        client asks), and tell the I/O process's receiver the gap began."""
        values = [{v: t.get() for v, t in served} for served in self._served] if self._served else None
        if self.process is not None:
            self.process.scan_ended(values)
        elif values is not None:
            for srv, vals in zip(self._set.servers, values):
                srv.refresh(vals)

    def start(self) -> None:
        if self.process is not None:
            self.process.start()
        else:
            self._set.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is not None:
            self.process.stop(timeout_s)
        else:
            self._set.stop(timeout_s)

    def stats(self) -> dict:
        return self.process.stats() if self.process is not None else self._set.stats()


def _child_env() -> dict:
    # the child imports this package as the runtime does, installed or not
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class IoProcess:
    """The runtime's side of the drivers' child process (see the module doc)."""

    def __init__(self, engine, maps: list[IoMap], clock_ns, events, queue_write, server_types: list[dict]):
        self.engine = engine
        self.maps = maps
        self.clock_ns = clock_ns
        self.events = events
        self.queue_write = queue_write
        self.server_types = server_types
        self.names = [n for n, _, _ in plan(maps)]
        self.inputs = [p.var for m in maps for p in m.inputs()]
        self.crashes = {n: 0 for n in self.names}
        self._crash_base = dict(self.crashes)
        self._stats: dict = {}
        self.proc: subprocess.Popen | None = None
        self._link: Link | None = None
        self._offset_sent = 0
        self.restarts = 0
        # receiver figures, for bench/modbus_bench.py and status
        self.batches = 0
        self.updates = 0
        self.rx_busy_ns = 0
        self.paced_waits = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._scan_end = threading.Event()
        self._paced = False             # after_scan has been called: the receiver waits for gaps
        self._tick_ns = getattr(engine, "base_period_ns", None)
        self._outputs = engine.io_outputs
        self._out_snap: dict = {}
        self._served_now: list | None = None
        self._thread: threading.Thread | None = None
        self._sender: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        p = self.proc
        return p.pid if p is not None and p.poll() is None else None

    # ------------------------------------------------------------ the scan thread
    def _outputs_changed(self) -> None:
        # after the engine committed every output: a consistent copy, a flag
        self._out_snap = dict(self._outputs.values)
        self._wake.set()

    def scan_ended(self, served: list[dict] | None) -> None:
        self._paced = True
        self._scan_end.set()
        if served is not None:
            self._served_now = served
            self._wake.set()

    # ------------------------------------------------------------ start / stop
    def start(self) -> None:
        if not self.names:
            return
        # a map that cannot cross to the child fails here, not in the link thread
        pickle.dumps(ChildConfig(self.maps, self.inputs, 0, self.server_types))
        self._outputs.listen(self._outputs_changed)
        self._out_snap = dict(self._outputs.values)
        self._thread = threading.Thread(target=self._run, name="gridplc-io-link", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="gridplc-io-send", daemon=True)
        self._thread.start()
        self._sender.start()
        self._ready.wait(START_WAIT_S)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread is None:
            return
        with self._lock:
            self._stopping.set()
            proc, link = self.proc, self._link
        self._wake.set()
        if link is not None:
            try:
                link.send(("x",))
            except OSError:
                pass
        if proc is not None:
            try:
                proc.wait(max(0.5, timeout_s - 1.0))
            except subprocess.TimeoutExpired:
                proc.kill()
        self._thread.join(timeout_s)
        self._sender.join(timeout_s)
        self._outputs.unlisten(self._outputs_changed)
        self._thread = None

    # ------------------------------------------------------------ the link thread
    def _offset_ns(self) -> int | None:
        """time.monotonic_ns() - clock_ns(), from a tight sample, or None."""
        for _ in range(5):
            a = time.monotonic_ns()
            c = self.clock_ns()
            b = time.monotonic_ns()
            if b - a < OFFSET_SAMPLE_NS:
                return (a + b) // 2 - c
        return None

    def _spawn(self) -> tuple[subprocess.Popen, Link]:
        mine, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "runtime.io.child", str(theirs.fileno())],
                                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=_child_env())
        except OSError:
            mine.close()
            raise
        finally:
            theirs.close()
        link = Link(mine)
        offset = self._offset_ns()
        self._offset_sent = offset if offset is not None else time.monotonic_ns() - self.clock_ns()
        # a large map may not fit the socket's buffer: the child reads it once it has started
        mine.settimeout(START_WAIT_S)
        try:
            link.send(ChildConfig(self.maps, self.inputs, self._offset_sent, self.server_types), codec=PICKLE)
        except OSError:
            link.shutdown()         # died at once, or never read: the receiver sees the end of the stream
        mine.settimeout(RX_TIMEOUT_S)
        return proc, link

    def _run(self) -> None:
        pause = RESTART_PAUSE_S
        while True:
            born = time.monotonic()
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    proc, link = self._spawn()
                except OSError as e:
                    proc = link = None
                    self.events("io_process_exit", {"pid": None, "returncode": None,
                                                    "reason": f"cannot start: {e}", "restart_in_s": pause})
                else:
                    self.proc, self._link = proc, link
            if proc is not None:
                self.events("io_process_start", {"pid": proc.pid, "restarts": self.restarts})
                self._wake.set()            # the sender: the whole output image to the new process
                reason = self._receive(link, proc)
                self._link = None
                link.close()
                code = self._reap(proc)
                self._ready.set()           # a start() still waiting: it waited for nothing
                if self._stopping.is_set():
                    return
                if time.monotonic() - born >= STABLE_S:
                    pause = RESTART_PAUSE_S
                self._crash_base = dict(self.crashes)
                self._stats = {}
                self.events("io_process_exit", {"pid": proc.pid, "returncode": code, "reason": reason,
                                                "restart_in_s": pause})
                self._mark_stale()
            self.restarts += 1
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RESTART_PAUSE_MAX_S)

    def _receive(self, link: Link, proc: subprocess.Popen) -> str:
        """Until the child's end closes; returns why it did."""
        heard = time.monotonic()
        publish_many = self.engine.input_stage.publish_many
        index = self.inputs.__getitem__
        while True:
            try:
                msgs = link.recv()
            except TimeoutError:
                if not self._stopping.is_set() and time.monotonic() - heard > SILENT_S:
                    proc.kill()
                    return f"silent for {SILENT_S:g} s"
                continue
            except (OSError, ProtocolError) as e:
                proc.kill()
                return f"link broken: {type(e).__name__}: {e}"
            if msgs is None:
                return "exited"
            heard = time.monotonic()
            if self._paced and self._tick_ns:
                self._wait_for_gap(msgs)
            t0 = time.perf_counter_ns()
            flat = None
            for m in msgs:
                kind = m[0]
                if kind == "i":
                    flat = m[1] if flat is None else flat + m[1]
                elif kind == "s":
                    self._took_stats(m[1])
                elif kind == "e":
                    self.events(m[1], m[2])
                elif kind == "w":
                    self._write(link, *m[1:])
                elif kind == "ready":
                    self._ready.set()
                elif kind == "fatal":
                    self.events("io_process_failed", {"error": m[1]})
            if flat:
                keys = flat[0::4]
                try:
                    paths = list(map(index, keys))
                except TypeError:       # an input the runtime did not list comes by its path
                    paths = [self.inputs[k] if k.__class__ is int else k for k in keys]
                # columns straight into the stage (no Update per point); whole groups
                # in one call, so each stays atomic
                publish_many(paths, flat[1::4], flat[2::4], flat[3::4])
                self.batches += 1
                self.updates += len(paths)
            self.rx_busy_ns += time.perf_counter_ns() - t0

    def _wait_for_gap(self, msgs: list) -> None:
        n = sum(len(m[1]) for m in msgs if m[0] == "i") // 4
        if not n:
            return
        self._scan_end.clear()          # before the check: a scan ending after it still wakes the wait
        last = self._outputs.committed_ns
        if last is None:
            return
        # committed_ns is the last completed scan's time; while one runs, its due time has passed
        room = last + self._tick_ns - self.clock_ns()
        if room < PACE_GUARD_NS + n * UPDATE_COST_NS:
            self._scan_end.wait(2 * self._tick_ns / 1e9)     # no scan ends (stalled): go ahead anyway
            self.paced_waits += 1

    def _write(self, link: Link, wid: int, var: str, text: str, who: str) -> None:
        err = None
        try:
            self.queue_write(var, text, who)
        except TagError as e:
            err = str(e)
        except Exception as e:  # noqa: BLE001 - a failing write path refuses the write; the link goes on
            err = f"{type(e).__name__}: {e}"
        try:
            link.send(("a", wid, err))
        except OSError:
            pass

    def _took_stats(self, stats: dict) -> None:
        self._stats = stats
        for name, s in stats.items():
            if name in self.crashes:
                self.crashes[name] = self._crash_base[name] + s.get("crashes", 0)

    def _reap(self, proc: subprocess.Popen) -> int:
        try:
            return proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def _mark_stale(self) -> None:
        # what the dead process fed keeps its last value, at its last source time
        ups = []
        for p in self.inputs:
            q, ts = self.engine.quality(p)
            if q in (GOOD, BAD):
                ups.append(Update(p, None, STALE, ts))
        if ups:
            self.engine.input_stage.publish(ups)

    # ------------------------------------------------------------ the sender thread
    def _send_loop(self) -> None:
        missing = object()
        sent_to = None
        while not self._stopping.is_set():
            self._wake.wait(COMMIT_PERIOD_S)
            self._wake.clear()
            link = self._link
            if link is None:
                continue
            if link is not sent_to:          # a new process: everything once more
                sent_to, last_snap, last_out, last_committed, committed_due = link, None, {}, missing, 0.0
                last_served_ref = last_served = None
                offset = self._offset_sent
            msgs = []
            snap = self._out_snap
            changes = {}
            if snap is not last_snap:
                last_snap = snap
                changes = {k: v for k, v in snap.items() if last_out.get(k, missing) != v}
                last_out.update(changes)
            committed = self._outputs.committed_ns
            now = time.monotonic()
            if changes or (committed != last_committed and now >= committed_due):
                last_committed, committed_due = committed, now + COMMIT_PERIOD_S
                msgs.append(("o", committed, changes))
            served = self._served_now
            if served is not None and served is not last_served_ref:
                last_served_ref = served
                if served != last_served:
                    last_served = served
                    msgs.append(("v", served))
            now_offset = self._offset_ns()
            if now_offset is not None and abs(now_offset - offset) > OFFSET_TOLERANCE_NS:
                offset = now_offset
                msgs.append(("c", offset))
            if msgs:
                try:
                    link.send(*msgs)
                except OSError:
                    # gone, or not reading for RX_TIMEOUT_S (the frame may be cut): the
                    # receiver sees the end of the stream and the process is replaced
                    link.shutdown()

    def stats(self) -> dict:
        up = self._link is not None
        down = "stopped" if self._stopping.is_set() or self._thread is None else "restarting"
        out = {}
        for n in self.names:
            s = dict(self._stats.get(n) or {"state": "starting"}) if up else {"state": down}
            s["crashes"] = self.crashes[n]
            out[n] = s
        return out
