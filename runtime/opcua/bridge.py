"""The runtime's side of the OPC UA server: tiny on the scan thread.

    bridge = OpcuaBridge(engine, cfg, lock=runtime.lock, clock_ns=..., events=..., sample_phase=0.5)
    bridge.start()                     # spawns the server process, waits until it listens
    bridge.after_scan(scan_no, now_ns) # scan thread, after each scan: sets a flag, nothing else
    bridge.stop()

Threads in this process: the publisher samples halfway between scan
deadlines (sample_phase; or, without a live clock, when after_scan wakes
it), at most once per sample_interval. It takes the runtime lock just long
enough to run the generated snapshot of the groups whose task ran (a tuple
of their exposed values; see snapshot.py), lets go, diffs against the
previous tuples and sends the changed positions with the scan's time and
the inputs' quality. The receiver applies client writes with
Engine.queue_write (the engine checks again and logs the write with who =
"opcua:<user>"), task resets and alarm acknowledgements, and answers each
with a status code. If the server process dies, the receiver logs it and
starts another on the same port; the publisher then sends everything again.

A client write is applied at the start of the next scan, before the
programs run; a program that assigns the same variable in that scan
overwrites it, and the client then sees the program's value published
after the scan. That is the program's business (as with any PLC): a
setpoint meant for SCADA is one the program only reads.

The server process (server.py) does all the asyncua work, so its Python
never competes with the scan thread for the GIL. If it cannot keep up, the
socket fills, the publisher waits, and it sends the newest state when it
can: the scan never waits on OPC UA.
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .. import tags
from ..alarms import AlarmError
from ..io.quality import GOOD, WAITING
from . import space
from .ipc import Channel
from .snapshot import changed, groups

DIAG_PERIOD_S = 1.0
JITTER_WINDOW = 1000            # p99 over the last this many starts (sorting 100k would hold the GIL)
START_TIMEOUT_S = 60.0
RESTART_PAUSE_S = 1.0
RESTART_PAUSE_MAX_S = 30.0
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BridgeError(Exception):
    """The server could not start; the message says why in one line."""


@dataclass
class PublishStats:
    samples: int = 0
    changes: int = 0
    lock_ns_last: int = 0             # time holding the runtime lock for one snapshot
    lock_ns_max: int = 0
    cycle_ns_last: int = 0            # snapshot + diff + send
    cycle_ns_max: int = 0
    cycle_ns: collections.deque = field(default_factory=lambda: collections.deque(maxlen=10_000))
    writes: int = 0
    refused: int = 0


class OpcuaBridge:
    def __init__(self, engine, cfg, *, lock=None, clock_ns=None, events=None, alarms=None, iomaps=(),
                 scheduler_stats=None, io_stats=None, site: str = "gridplc", version: str = "",
                 sample_phase: float | None = None):
        """sample_phase: with a live clock_ns (the scheduler's, in engine time),
        sample at this fraction of the base period after each scan deadline
        (0.5: halfway between scans, when the scan thread sleeps) instead of
        being woken by after_scan. Waking a thread from the scan thread hands
        the GIL over inside the scan's tick: on a loaded machine that cost
        the tick milliseconds (bench/opcua_bench.py)."""
        self.engine = engine
        self.cfg = cfg
        self.sample_phase = sample_phase if clock_ns is not None else None
        self._scanned = False
        self.lock = lock if lock is not None else threading.Lock()
        self.clock_ns = clock_ns
        self.events = events or (lambda kind, data: None)
        self.alarms = alarms
        self.scheduler_stats = scheduler_stats
        self.io_stats = io_stats
        self.spec, self.leaves = space.build(engine, cfg, site=site, version=version, iomaps=iomaps, alarms=alarms)
        keys = list(engine.instances)
        self._instances = tuple(engine.instances[k] for k in keys)
        self._groups = groups(engine, self.leaves, keys)
        self._inputs = [(i, v.nid) for i, v in enumerate(self.spec.variables) if v.field_input]
        self.stats = PublishStats()
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._ch: Channel | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._alarm_q: collections.deque = collections.deque()
        self._generation = 0
        if alarms is not None:
            alarms.listen(self._on_alarm)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> int:
        """Start the server process; returns the port it listens on."""
        self._spawn(self.cfg)
        for target, name in ((self._publish_loop, "gridplc-opcua-publish"), (self._receive_loop, "gridplc-opcua-rx")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self._wake.set()
        return self.port

    def _spawn(self, cfg) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            proc = subprocess.Popen([sys.executable, "-m", "runtime.opcua.server", str(child.fileno())],
                                    pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL)
        finally:
            child.close()
        ch = Channel(parent)
        parent.settimeout(START_TIMEOUT_S)
        try:
            ch.send(("start", self.spec, cfg))
            msg = ch.recv()
            while msg is not None and msg[0] == "event":
                self.events(msg[1], msg[2])
                msg = ch.recv()
        except (OSError, socket.timeout):
            msg = None
        if msg is None or msg[0] != "ready":
            ch.close()
            self._reap(proc)
            why = msg[1] if msg is not None and msg[0] == "error" else "the server process did not start"
            raise BridgeError(why)
        parent.settimeout(None)
        self.proc, self._ch, self.port = proc, ch, msg[1]
        if self.alarms is not None:
            self._alarm_q.extend(s for s in self.alarms.snapshot() if s.retain)
        self._generation += 1            # the publisher sends everything to a new server
        self.events("opcua_start", {"endpoint": self.endpoint, "security": list(cfg.security),
                                    "variables": len(self.spec.variables), "anonymous": cfg.anonymous_role,
                                    "users": len(cfg.users)})

    def after_scan(self, scan_no: int, now_ns: int) -> None:
        """Scan thread, right after a scan: note it (and wake the publisher
        unless it samples at a phase of its own). Microseconds."""
        self._scanned = True
        if self.sample_phase is None:
            self._wake.set()

    def _wait_for_sample(self) -> None:
        if self.sample_phase is None:
            self._wake.wait(DIAG_PERIOD_S)
            self._wake.clear()
            return
        period = self.engine.base_period_ns
        phase = int(period * self.sample_phase)
        now = self.clock_ns()
        target = now - now % period + phase
        if target <= now:
            target += period
        self._stopping.wait((target - now) / 1e9)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._ch is not None:
            try:
                self._ch.send(("stop",))
            except OSError:
                pass
        if self._ch is not None:
            self._ch.close()
        for t in self._threads:
            t.join(5.0)
        self._reap(self.proc)

    @staticmethod
    def _reap(proc) -> None:
        if proc is None:
            return
        try:
            proc.wait(10.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)

    @property
    def endpoint(self) -> str:
        return self.cfg.endpoint.replace(f":{self.cfg.port}/", f":{self.port}/")

    # ------------------------------------------------------------ publishing
    def _on_alarm(self, tr) -> None:
        self._alarm_q.append(tr.state)
        if self.sample_phase is None:
            self._wake.set()

    def _publish_loop(self) -> None:
        """Snapshot under the lock (only the groups whose task ran, unless a
        write, force, reset or missed scan may have touched any), diff and send
        outside it."""
        last_scan = -1
        last_objs: tuple = ()
        last_q: tuple = ()
        last_faults = None
        next_diag = 0.0
        last_sample = 0
        interval = self.cfg.sample_interval_ns
        engine, lock, insts, grps = self.engine, self.lock, self._instances, self._groups
        paths = [p for _, p in self._inputs]
        quality = engine.quality
        perf = time.perf_counter_ns
        st = self.stats
        generation = self._generation
        while not self._stopping.is_set():
            self._wait_for_sample()
            if self._stopping.is_set():
                return
            if not (self._scanned or self._alarm_q or time.monotonic() >= next_diag
                    or generation != self._generation):
                continue
            self._scanned = False
            if generation != self._generation:           # a restarted server knows nothing yet
                generation = self._generation
                last_scan, last_q, last_faults, next_diag = -1, (), None, 0.0
                for g in grps:
                    g.last = None
            try:
                if interval:
                    wait = (last_sample + interval - time.monotonic_ns()) / 1e9
                    if wait > 0 and self._stopping.wait(wait):
                        return
                last_sample = time.monotonic_ns()
                t0 = perf()
                with lock:
                    t1 = perf()
                    scan = engine.scan_count
                    now = engine.ctx.now_ns
                    objs = tuple(i.obj for i in insts)
                    full = (scan != last_scan + 1 or bool(engine.last_applied) or bool(engine.forced)
                            or any(a is not b for a, b in zip(objs, last_objs)))
                    for g in grps:
                        if g.due(full):
                            g.fresh = g.snap(insts)
                            g.scans = g.task.scans if g.task is not None else 0
                        else:
                            g.fresh = None
                    qs = tuple(map(quality, paths)) if paths else ()
                    faults = tuple(t.faulted for t in engine.tasks)
                    t2 = perf()
                last_objs = objs
                if scan != last_scan:
                    last_scan = scan
                    qcodes = tuple(q for q, _ts in qs) if scan > 0 else (WAITING,) * len(paths)
                    out = self._changes(qcodes, last_q)
                    last_q = qcodes
                    if out:
                        self._ch.send(("values", scan, self._wall(now), out))
                        st.changes += len(out)
                    st.samples += 1
                if self._alarm_q:
                    states = []
                    while self._alarm_q:
                        states.append(self._alarm_q.popleft())
                    self._ch.send(("alarms", states, self._wall(engine.ctx.now_ns)))
                mono = time.monotonic()
                if faults != last_faults or mono >= next_diag:
                    last_faults = faults
                    next_diag = mono + DIAG_PERIOD_S
                    self._ch.send(("diag", self._diagnostics()))
                t3 = perf()
                st.lock_ns_last = t2 - t1
                st.lock_ns_max = max(st.lock_ns_max, t2 - t1)
                st.cycle_ns_last = t3 - t0
                st.cycle_ns_max = max(st.cycle_ns_max, t3 - t0)
                st.cycle_ns.append(t3 - t0)
            except OSError:
                for g in grps:                  # the server went away: the receiver restarts it
                    g.last = None
                last_scan = -1

    def _changes(self, qcodes: tuple, last_q: tuple) -> list:
        """[(variable index, value, quality)] that differ from what was sent."""
        qual = {}
        for j, (idx, _p) in enumerate(self._inputs):
            qual[idx] = qcodes[j]
        out = []
        for g in self._groups:
            new = g.fresh
            if new is None:
                continue
            pos = g.positions
            if g.last is None:
                idx = range(len(new))
            else:
                idx = changed(new, g.last)
                if g.task is None and qcodes != last_q:
                    moved = {j for j, (a, b) in enumerate(zip(qcodes, last_q)) if a != b}
                    idx = sorted(set(idx) | moved)
            g.last = new
            if g.task is None:
                out += [(pos[i], new[i], qual[pos[i]]) for i in idx]
            else:
                out += [(pos[i], new[i], GOOD) for i in idx]
        return out

    def _wall(self, scan_ns: int) -> int:
        """The wall time of a scan that latched scan_ns: now, less the scan's age
        on the engine clock (read here, between scans, never in one)."""
        if self.clock_ns is None:
            return time.time_ns()
        return time.time_ns() - (self.clock_ns() - scan_ns)

    def _diagnostics(self) -> dict:
        out = {"scan": self.engine.scan_count, "writes": self.stats.writes, "tasks": {}}
        for t in self.engine.tasks:
            d = {"ScanCount": t.scans, "ExecLastMs": t.exec_last_ns / 1e6, "ExecMaxMs": t.exec_max_ns / 1e6}
            f = t.faulted
            d["Faulted"] = f is not None
            d["FaultText"] = f.what if f is not None else ""
            d["FaultLocation"] = (f.where or "") if f is not None else ""
            d["FaultScan"] = f.scan if f is not None else 0
            ss = self.scheduler_stats.get(t.name) if self.scheduler_stats else None
            if ss is not None:
                recent = sorted(itertools.islice(reversed(ss.jitter_ns), JITTER_WINDOW))
                d["JitterP99Ms"] = recent[min(len(recent) - 1, int(0.99 * len(recent)))] / 1e6 if recent else 0.0
                d["JitterMaxMs"] = ss.jitter_max_ns / 1e6
                d["Overruns"] = ss.overruns
            out["tasks"][t.name] = d
        if self.io_stats is not None:
            try:
                out["io"] = self.io_stats()
            except Exception as e:  # noqa: BLE001 - a driver's stats must never stop publishing
                out["io"] = {}
                self.events("opcua_diag_error", {"error": f"{type(e).__name__}: {e}"})
        return out

    # ------------------------------------------------------------ requests from clients
    def _receive_loop(self) -> None:
        while True:
            msg = self._ch.recv()
            if msg is None:
                if self._stopping.is_set() or not self._restart():
                    return
                continue
            kind = msg[0]
            if kind == "event":
                self.events(msg[1], msg[2])
                continue
            rid, user = msg[1], msg[2]
            if kind == "write":
                status, reason = self._write(user, msg[3], msg[4])
            elif kind == "call":
                status, reason = self._call(user, msg[3], msg[4])
            else:
                continue
            try:
                self._ch.send(("reply", rid, status, reason))
            except OSError:
                return

    def _restart(self) -> bool:
        """The server process ended by itself: log it and start another on the
        same port, retrying with backoff. False once the bridge is stopping."""
        try:
            code = self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5.0)
        self.events("opcua_server_exit", {"returncode": code})
        self._ch.close()
        pause = RESTART_PAUSE_S
        while not self._stopping.wait(pause):
            try:
                self._spawn(dataclasses.replace(self.cfg, port=self.port))
                if self._stopping.is_set():     # stop() came while it started: it has the old channel
                    self._ch.send(("stop",))
                    self._ch.close()
                    self._reap(self.proc)
                    return False
                return True
            except BridgeError as e:
                self.events("opcua_restart_failed", {"error": str(e)})
                pause = min(pause * 2, RESTART_PAUSE_MAX_S)
        return False

    def _write(self, user: str, path: str, text: str) -> tuple[str, str]:
        try:
            with self.lock:
                self.engine.queue_write(path, text, f"opcua:{user}")
        except tags.TagError as e:
            self.stats.refused += 1
            return _write_status(str(e)), str(e)
        self.stats.writes += 1
        return "Good", ""

    def _call(self, user: str, what: str, args) -> tuple[str, str]:
        who = f"opcua:{user}"
        try:
            with self.lock:
                if what == "reset_task":
                    self.engine.reset_task(args[0], args[1], who)
                elif what in ("ack", "alarm_reset"):
                    if self.alarms is None:
                        return "BadNodeIdUnknown", "no alarms"
                    if what == "ack":
                        self.alarms.acknowledge(args[0], who, args[1])
                    else:
                        self.alarms.reset(args[0], who)
                else:
                    return "BadMethodInvalid", f"unknown call {what}"
        except AlarmError as e:
            msg = str(e)
            return ("BadConditionBranchAlreadyAcked" if "already acknowledged" in msg else
                    "BadNodeIdUnknown" if msg.startswith("no alarm") else "BadInvalidState"), msg
        except tags.TagError as e:
            return "BadInvalidArgument", str(e)
        return "Good", ""


def _write_status(message: str) -> str:
    if "bound to the field" in message or "use its elements" in message:
        return "BadNotWritable"
    if "queue full" in message:
        return "BadTooManyOperations"
    if "outside" in message:
        return "BadOutOfRange"
    return "BadTypeMismatch"
