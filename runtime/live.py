"""The live runtime: the engine on a real clock, with retain, event log,
journal and the control API (one place for reads, writes, forces, resets).

Threads: the scan thread (Scheduler) runs Engine.scan; the control server
thread and, later, the I/O and OPC UA loops only stage data. Engine state is
read and mutated under `self.lock`, which the scan holds while it runs, so a
reader never sees half a scan.
"""
from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time

from plc_lang.driver import compile_project, read_sources
from plc_lang.diagnostics import render

from . import tags
from .engine import Engine, EngineError
from .eventlog import AsyncEventLog, EventLogError
from .io.iomap import bind_problems, read_iomap
from .io.manager import IoManager
from .io.quality import NAMES as QUALITY_NAMES
from .alarms import AlarmError, alarm_set
from .opcua.bridge import BridgeError, OpcuaBridge
from .opcua.config import OpcuaConfigError, load_opcua
from .journal import JournalWriter
from .retain import RetainEntry, RetainError, RetainStore, RetainWriter, match_declarations
from .scheduler import Scheduler
from .site import SiteConfig, SiteError, check_against_program

RUNTIME_VERSION = "gridplc 0.1.0"
SWITCH_INTERVAL_S = 0.0005


class StartError(Exception):
    """The site cannot start; the message says why (file, key, what)."""


class LiveRuntime:
    def __init__(self, site: SiteConfig, *, cold: bool = False, record_dir: str | None = None, clock=None,
                 user: str = "runtime", device_overrides: dict | None = None, opcua_config=None):
        self.site = site
        self.lock = threading.RLock()
        self.sources = read_sources(site.sources)
        result = compile_project(self.sources)
        if not result.ok:
            raise StartError(render([d for d in result.diagnostics if d.is_error], result.sources, "short"))
        self.program = result.program
        try:
            self.engine = Engine(result.program, program_name=site.program, interval_ns=site.interval_ns,
                                 watchdog_s=site.watchdog_s, realtime_priority=site.realtime_priority)
        except EngineError as e:
            raise StartError(f"{site.path}: {e}") from None
        try:
            check_against_program(site, self.engine)
        except SiteError as e:
            self.engine.close()
            raise StartError(str(e)) from None
        self.io_maps = []
        problems = []
        for path in site.io_maps:
            m, found = read_iomap(path)
            problems += found
            if m is not None and not found:
                # `gridplc demo` moves simulated devices to the free ports it found
                for name, attrs in (device_overrides or {}).items():
                    if name == "modbus_server" and m.modbus_server is not None:
                        for k, v in attrs.items():
                            setattr(m.modbus_server, k, v)
                    if name in m.devices:
                        for k, v in attrs.items():
                            cur = getattr(m.devices[name], k)
                            setattr(m.devices[name], k, {**cur, **v} if isinstance(cur, dict) else v)
                problems += bind_problems(m, self.engine)
                self.io_maps.append(m)
        if problems:
            self.engine.close()
            raise StartError("\n".join(problems))
        os.makedirs(site.state_dir, exist_ok=True)
        self.log = AsyncEventLog(site.event_log_path)
        self.engine.events = self._event
        self.retain_store = RetainStore(site.retain_path)
        self.restored: dict = {}
        self.mode = "cold" if cold else "warm"
        try:
            self._restore(cold)
        except RetainError as e:
            self.log.append("start_refused", {"reason": str(e)})
            self.log.close()
            self.engine.close()
            raise StartError(str(e)) from None
        self.engine.refresh_outputs()
        self.retain_writer = RetainWriter(self.retain_store, site.retain_period_s)
        self._retain_due_ns = 0
        self.journal = None
        if record_dir is not None:
            safe = {p: tags.to_json_value(o.safe, o.tag.type) for p, o in self.engine.outputs.items()}
            self.journal = JournalWriter(record_dir, self.engine, self.sources, program=site.program,
                                         interval_ns=site.interval_ns, restored=self.restored, safe=safe)
        self.scheduler = Scheduler(self.engine.tasks, self._tick, clock=clock, on_overrun=self._overrun,
                                   realtime_priority=site.realtime_priority)
        # drivers stamp inputs in the scan's clock: nanoseconds since the scheduler started
        sched = self.scheduler
        # the drivers' Python work in the scan's process takes its GIL (2-3x the idle p99 start
        # jitter, bench/modbus_bench.py); a given clock (virtual, offline) keeps them in-process,
        # as the child's timestamps come from CLOCK_MONOTONIC
        self.io = IoManager(self.engine, self.io_maps, lambda: sched.clock.now_ns() - sched.start_ns,
                            events=self._event, queue_write=lambda p, v, who: self.write(p, v, who),
                            separate_process=site.io_process and clock is None)
        try:
            self.alarms = alarm_set(self.engine, site.alarms, events=self._event)
            ocfg = opcua_config if opcua_config is not None else \
                load_opcua(site.path, state_dir=site.state_dir, site_name=site.name)
        except (AlarmError, OpcuaConfigError) as e:
            self.log.close()
            self.engine.close()
            raise StartError(str(e)) from None
        self.opcua = None if ocfg is None else OpcuaBridge(
            self.engine, ocfg, lock=self.lock, clock_ns=lambda: sched.clock.now_ns() - sched.start_ns,
            events=self._event, alarms=self.alarms, iomaps=self.io_maps, scheduler_stats=self.scheduler.stats,
            io_stats=self.io.stats, site=site.name, version=RUNTIME_VERSION, sample_phase=0.5)
        self.stats = self.scheduler.stats
        self.started_wall = time.time()
        self.log.append("start", {"site": site.name, "version": RUNTIME_VERSION,
                                  "program_sha256": self.program.project.source_hash,
                                  "sources": [s.path for s in self.sources], "mode": self.mode,
                                  "tasks": {t.name: {"interval_ms": t.interval_ns / 1e6, "priority": t.priority,
                                                     "watchdog_ms": t.watchdog_s * 1e3} for t in self.engine.tasks},
                                  "record": record_dir})
        self.control = None
        self.user = user
        self.log_errors = 0
        self.log_error: str | None = None

    # ------------------------------------------------------------ start / stop
    def _restore(self, cold: bool) -> None:
        declared = {p: str(t) for p, t in self.engine.retained_paths().items()}
        persistent = {p for p in self.engine.retained_paths(persistent_only=True)}
        try:
            loaded = self.retain_store.load()
        except RetainError as e:
            if not cold:
                raise
            # told to start cold: the damaged file is set aside, never loaded
            self.log.append("retain", {"restored": 0, "mode": "cold", "discarded": str(e)})
            return
        if loaded is None:
            return
        entries, report = match_declarations(loaded.entries, declared)
        if cold:
            entries = {p: e for p, e in entries.items() if p in persistent}
        restored = {p: (e.type, e.value) for p, e in entries.items()}
        try:
            self.engine.restore(restored)
        except tags.TagError as e:
            raise RetainError(f"retain file {self.site.retain_path}: {e}; start cold (gridplc run --cold) to discard it") \
                from None
        self.restored = restored
        self.log.append("retain", {"restored": len(restored), "mode": "cold" if cold else "warm",
                                   "report": report, "from_scan": loaded.scan})

    def start(self, *, control: bool = True) -> None:
        # Another Python thread holding the GIL delays the scan by up to the
        # switch interval (5 ms by default; bench/runtime_bench.py --thread-load).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # Everything built so far (compiled program, types, AST) lives for the
        # whole run: keep it out of the cyclic collector, whose full passes
        # over it paused scans by up to 20 ms.
        gc.collect()
        gc.freeze()
        # pymodbus logs every timeout at ERROR with a hex dump; the driver's
        # stats and its points' quality say it once, in the status
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        if control:
            from .control import ControlServer
            self.control = ControlServer(self, self.site.control_host, self.site.control_port)
            self.control.start()
        self.scheduler.start()
        self.io.start()
        if self.opcua is not None:
            try:
                self.opcua.start()
            except BridgeError as e:
                self.stop(f"OPC UA server: {e}")
                raise StartError(f"{self.site.path}: opcua: {e}") from None
        if self.site.realtime_priority is not None:
            time.sleep(0.05)           # the scan thread asks for SCHED_FIFO as it starts
            self._event("config", {"realtime": self.scheduler.realtime})

    def stop(self, reason: str = "stop requested") -> None:
        self.scheduler.stop()
        self.io.stop()
        if self.opcua is not None:
            self.opcua.stop()          # not under self.lock: its receiver thread takes it
        with self.lock:
            try:
                self.retain_writer.offer(self._retained_entries(), program_hash=self.program.project.source_hash,
                                         scan=self.engine.scan_count)
                self.retain_writer.close()
                retain_ok = True
            except RetainError as e:
                retain_ok = False
                print(f"gridplc: final retain write failed: {e}", file=sys.stderr)
            if self.journal is not None:
                self.journal.close()
            self.log.append("stop", {"reason": reason, "scans": self.engine.scan_count, "retain_written": retain_ok,
                                     "tasks": self.status()["tasks"]},
                            scan=self.engine.scan_count, t_ns=self.engine.ctx.now_ns)
        if self.control is not None:
            self.control.stop()
        self.log.close()
        self.engine.close()

    # ------------------------------------------------------------ the scan thread
    def _tick(self, now_ns: int, due) -> None:
        with self.lock:
            self.engine.scan(now_ns, due)
            self.io.after_scan()
            self.alarms.after_scan(self.engine.scan_count, now_ns)
            if self.opcua is not None:
                self.opcua.after_scan(self.engine.scan_count, now_ns)
            if self.journal is not None:
                self.journal.record(due)
            if now_ns >= self._retain_due_ns:
                # a snapshot is a few dict entries per retained variable; the writer thread does the disk
                self._retain_due_ns = now_ns + int(self.site.retain_period_s * 1e9)
                entries = self._retained_entries()
                if entries:
                    self.retain_writer.offer(entries, program_hash=self.program.project.source_hash,
                                             scan=self.engine.scan_count)

    def _retained_entries(self) -> dict:
        return {p: RetainEntry(sig, v) for p, (sig, v) in self.engine.retained().items()}

    def _overrun(self, task, missed: int) -> None:
        self._event("overrun", {"task": task.name, "missed_ticks": missed,
                                "exec_ms": task.exec_last_ns / 1e6, "interval_ms": task.interval_ns / 1e6})

    def _event(self, kind: str, data: dict) -> None:
        # A failing event log is reported, never allowed to stop the scan
        # (the scan thread calls this, from inside fault handling too).
        try:
            self.log.append(kind, data, scan=self.engine.scan_count, t_ns=self.engine.ctx.now_ns)
        except EventLogError as e:
            self.log_errors += 1
            self.log_error = str(e)

    # ------------------------------------------------------------ the control API
    def read(self, path: str) -> dict:
        with self.lock:
            t = self.engine.tag(path)
            q, ts = self.engine.quality(t.path)
            out = {"path": path, "type": str(t.type), "value": tags.to_json_value(t.get(), t.type),
                   "forced": path in self.engine.forced}
            if t.path in self.engine.inputs:
                out["quality"] = QUALITY_NAMES[q]
                out["age_ms"] = None if ts is None else (self.engine.ctx.now_ns - ts) / 1e6
            return out

    def write(self, path: str, value: str, who: str) -> dict:
        with self.lock:            # so `old` is the value before the write, and the logged scan is whole
            old, new = self.engine.queue_write(path, value, who)
            t = self.engine.tag(path)
        return {"path": t.path, "old": tags.to_json_value(old, t.type), "new": tags.to_json_value(new, t.type),
                "applied": "at the start of the next scan"}

    def force(self, path: str, value: str, who: str) -> dict:
        with self.lock:
            v = self.engine.force(path, value, who)
            return {"path": path, "forced": tags.to_json_value(v, self.engine.tag(path).type)}

    def release(self, path: str, who: str) -> dict:
        with self.lock:
            self.engine.release(path, who)
            return {"path": path, "forced": False}

    def reset(self, task: str, mode: str, who: str) -> dict:
        with self.lock:
            t = self.engine.task(task)
            was = str(t.faulted) if t.faulted else None
            self.engine.reset_task(task, mode, who)
            return {"task": t.name, "mode": mode, "was_faulted": was}

    def status(self) -> dict:
        # percentiles sort up to 100k samples: do it outside the scan's lock
        jitter = {}
        for name, st in self.stats.items():
            s = sorted(list(st.jitter_ns))
            jitter[name] = (s[len(s) // 2] if s else 0, s[min(len(s) - 1, int(0.99 * len(s)))] if s else 0)
        with self.lock:
            out = {}
            for t in self.engine.tasks:
                st = self.stats[t.name]
                out[t.name] = {
                    "scans": t.scans, "interval_ms": t.interval_ns / 1e6,
                    "exec_last_ms": t.exec_last_ns / 1e6, "exec_max_ms": t.exec_max_ns / 1e6,
                    "exec_min_ms": t.exec_min_ns / 1e6,
                    "exec_mean_ms": (t.exec_total_ns / t.scans / 1e6) if t.scans else 0.0,
                    "jitter_p50_ms": jitter[t.name][0] / 1e6, "jitter_p99_ms": jitter[t.name][1] / 1e6,
                    "jitter_max_ms": st.jitter_max_ns / 1e6, "overruns": st.overruns,
                    "fault": str(t.faulted) if t.faulted else None,
                }
            ua = None if self.opcua is None else {
                "endpoint": self.opcua.endpoint, "changes": self.opcua.stats.changes,
                "writes": self.opcua.stats.writes, "cycle_max_ms": self.opcua.stats.cycle_ns_max / 1e6}
            return {"site": self.site.name, "scan": self.engine.scan_count, "tasks": out, "io": self.io.stats(),
                    "opcua": ua, "alarms": [a for a in self._alarm_list()],
                    "event_log_errors": self.log_errors, "event_log_error": self.log_error,
                    "forced": {p: tags.to_json_value(v, self.engine.tag(p).type) for p, v in self.engine.forced.items()},
                    "program_sha256": self.program.project.source_hash, "version": RUNTIME_VERSION}

    def _alarm_list(self) -> list:
        """The alarm list: active, or cleared and not yet acknowledged."""
        return [{"name": a.name, "message": a.message, "severity": a.severity, "active": a.active,
                 "acked": a.acked} for a in self.alarms.snapshot() if a.retain]

    def status_line(self) -> str:
        st = self.status()
        parts = []
        for name, t in st["tasks"].items():
            flag = " FAULT" if t["fault"] else ""
            parts.append(f"{name}: {t['scans']} scans, {t['exec_last_ms']:.2f}/{t['exec_max_ms']:.2f} ms, "
                         f"jitter p99 {t['jitter_p99_ms']:.2f} ms, {t['overruns']} overruns{flag}")
        forced = f" | {len(st['forced'])} forced" if st["forced"] else ""
        return " | ".join(parts) + forced
