"""The live scheduler: cyclic tasks on absolute deadlines of a monotonic clock.

Deadlines are `start + k * interval`, never `last + interval`, so a task
does not drift over hours. Several due tasks run in priority order (lower
PRIORITY first, then declaration order) in one scan; tasks do not preempt
each other (one scan thread, see README "Scan thread"). A task that misses
its next deadline counts an overrun, is logged, and skips the ticks it
missed rather than running late back-to-back.

The scheduler only decides *when*; `Engine.scan` decides *what*. Time comes
from a Clock so tests can drive it.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

JITTER_SAMPLES_MAX = 100_000
SPIN_NS = 200_000


class MonotonicClock:
    """The real clock: CLOCK_MONOTONIC in ns, and a precise sleep."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, deadline_ns: int, stop: threading.Event) -> None:
        # Event.wait sleeps in the kernel and wakes within ~0.1 ms here; the
        # last SPIN_NS is a spin that releases the GIL each turn (it costs at
        # most SPIN_NS of CPU per tick).
        while True:
            left = deadline_ns - time.monotonic_ns()
            if left <= 0 or stop.is_set():
                return
            if left > SPIN_NS:
                stop.wait((left - SPIN_NS) / 1e9)
            else:
                time.sleep(0)


def set_realtime(priority: int) -> str:
    """SCHED_FIFO for the calling thread (Linux, needs the privilege). Other
    processes then cannot delay a scan; a runaway scan is still stopped by the
    watchdog, whose thread runs one priority higher."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return f"SCHED_FIFO {priority}"
    except (AttributeError, OSError) as e:
        return f"not real-time: {e}"


@dataclass
class TaskStats:
    name: str
    interval_ns: int
    scans: int = 0
    overruns: int = 0
    jitter_ns: deque = field(default_factory=lambda: deque(maxlen=JITTER_SAMPLES_MAX))
    jitter_max_ns: int = 0

    def record_start(self, late_ns: int) -> None:
        self.scans += 1
        self.jitter_ns.append(late_ns)
        if late_ns > self.jitter_max_ns:
            self.jitter_max_ns = late_ns

    def percentile_ns(self, q: float) -> int:
        if not self.jitter_ns:
            return 0
        s = sorted(self.jitter_ns)
        return s[min(len(s) - 1, int(q * len(s)))]


class Scheduler:
    """Runs `on_tick(now_ns, due_tasks)` at each deadline, in its own thread."""

    def __init__(self, tasks, on_tick, *, clock=None, on_overrun=None, realtime_priority: int | None = None):
        self.tasks = list(tasks)                 # engine Task objects (interval_ns, priority, order)
        self.on_tick = on_tick
        self.on_overrun = on_overrun or (lambda task, missed: None)
        self.clock = clock or MonotonicClock()
        self.stats = {t.name: TaskStats(t.name, t.interval_ns) for t in self.tasks}
        self.start_ns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next: dict[str, int] = {}
        self.error: BaseException | None = None
        self.realtime_priority = realtime_priority
        self.realtime: str | None = None        # what became of the request, for the event log

    def start(self) -> None:
        self.start_ns = self.clock.now_ns()
        self._next = {t.name: self.start_ns for t in self.tasks}
        self._thread = threading.Thread(target=self._run, name="gridplc-scan", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        if self.realtime_priority is not None:
            self.realtime = set_realtime(self.realtime_priority)
        try:
            order = sorted(self.tasks, key=lambda t: (t.priority, t.order))
            clock = self.clock
            while not self._stop.is_set():
                nxt = min(self._next.values())
                clock.sleep_until(nxt, self._stop)
                if self._stop.is_set():
                    return
                now = clock.now_ns()
                due = [t for t in order if self._next[t.name] <= now]
                for t in due:
                    self.stats[t.name].record_start(now - self._next[t.name])
                self.on_tick(now - self.start_ns, due)
                after = clock.now_ns()
                for t in due:
                    k_next = self._next[t.name] + t.interval_ns
                    if k_next <= after:
                        # the scan ran past this task's next deadline: count it, skip the missed ticks
                        missed = (after - k_next) // t.interval_ns + 1
                        self.stats[t.name].overruns += 1
                        self.on_overrun(t, missed)
                        k_next += missed * t.interval_ns
                    self._next[t.name] = k_next
        except BaseException as e:  # noqa: BLE001 - reported by the runtime, never silent
            self.error = e
