"""Process images: the only door between drivers and the engine.

Drivers run at their own pace on other threads; the scan sees one consistent
snapshot per cycle. A driver hands a group of updates (for example all the
signals of one CAN frame) to `InputStage.publish` in one call; the engine
drains everything published so far at the start of a scan, under one lock,
so a frame is never half-applied.

Timestamps are in the engine's clock domain (nanoseconds, the same numbers
the scan latches as `now_ns`): the live runtime gives drivers `IoPort.clock_ns`
for that, the virtual clock gives scenario time offline.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from .quality import GOOD


@dataclass(frozen=True)
class Update:
    path: str              # canonical tag path, e.g. "Main.cellVMax"
    value: object          # already in the variable's Python representation; None = keep the last value
    quality: int = GOOD
    ts_ns: int | None = None   # source timestamp (engine clock); None = now


class InputStage:
    """Thread-safe staging area drivers publish into; drained once per scan.
    It keeps the last (value, quality, ts_ns) per path: the engine takes
    that as it is (take), and a publisher with columns of numbers (the I/O
    process's receiver) never builds an Update per point (publish_many)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[str, tuple] = {}

    def publish(self, updates: Iterable[Update]) -> None:
        with self._lock:
            pending = self._pending
            for u in updates:
                pending[u.path] = (u.value, u.quality, u.ts_ns)

    def publish_many(self, paths: Iterable[str], values: Iterable, qualities: Iterable[int],
                     ts_ns: Iterable[int | None]) -> None:
        """publish() of parallel columns: one group, as atomic as a publish."""
        rows = zip(paths, zip(values, qualities, ts_ns))
        with self._lock:
            self._pending.update(rows)

    def take(self) -> dict[str, tuple]:
        """The engine's drain: path -> (value, quality, ts_ns), everything
        published since the last take, under one lock."""
        if not self._pending:           # the common case costs no lock
            return {}
        with self._lock:
            out, self._pending = self._pending, {}
        return out

    def drain(self) -> dict[str, Update]:
        """take(), as Updates (for drivers' tests and benches)."""
        return {p: Update(p, v, q, ts) for p, (v, q, ts) in self.take().items()}


class OutputImage:
    """Values the field should see, committed by the engine after each scan.

    `values` holds, per output path, the program's value after a scan that
    completed without fault, or the declared safe value while its task is
    faulted. `seq` increases with every commit that changed something;
    listeners (one per driver, cheap and thread-safe, e.g.
    `loop.call_soon_threadsafe(event.set)`) hear about changes."""

    def __init__(self):
        self.values: dict[str, object] = {}
        self.seq = 0
        # engine-clock time of the last scan, changed or not: a periodic
        # keep-alive must stop when the scans stop, not only the I/O thread
        self.committed_ns: int | None = None
        self._listeners: list[Callable[[], None]] = []

    def listen(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def unlisten(self, fn: Callable[[], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def get(self, path: str):
        return self.values.get(path)

    def changed(self) -> None:
        self.seq += 1
        for fn in self._listeners:
            fn()


class IoPort:
    """What one driver is given: publish inputs, read outputs, tell the time."""

    def __init__(self, stage: InputStage, outputs: OutputImage, clock_ns: Callable[[], int]):
        self.stage = stage
        self.outputs = outputs
        self.clock_ns = clock_ns

    def publish(self, updates: Iterable[Update]) -> None:
        self.stage.publish(updates)

    def output(self, path: str):
        return self.outputs.get(path)


def wake(loop, event) -> None:
    """From the scan thread: wake a driver's loop to send outputs. Costs a
    microsecond; a loop that has closed has nothing left to send."""
    if loop is None or event is None:
        return
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:
        pass


BACKOFF_START_S = 0.1


async def backoff(driver, delay_s: float, max_ns: int) -> float:
    """A driver's pause before reconnecting, shown in its stats (state
    "backoff", retry_in_s); returns the next pause, doubled up to max_ns."""
    driver._state = "backoff"
    driver._retry_in_s = delay_s
    try:
        await asyncio.sleep(delay_s)
    except asyncio.CancelledError:
        driver._state = "stopped"
        raise
    driver._retry_in_s = 0.0
    return min(delay_s * 2, max(max_ns / 1e9, BACKOFF_START_S))
