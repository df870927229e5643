"""The I/O process: the drivers of the I/O maps, away from the scan's GIL.

manager.IoProcess starts it as `python -m runtime.io.child FD`, FD being
its end of a socketpair (messages in ipc.py). It reads its ChildConfig,
builds the drivers exactly as the runtime process would (DriverSet) on an
IoPort of its own, and knows no engine:

- the port's publish keeps the last update per input (as the engine's
  input stage does) and a sender thread ships what gathered within
  GATHER_S as one message of indices and values: whole groups, so each
  stays atomic in the engine;
- the runtime's output changes land in a local OutputImage, whose
  listeners (the drivers) hear of them as they would in the runtime, and
  `committed_ns` with them (the CAN driver's stall check reads it);
- a Modbus server's write waits for the runtime's queue_write answer
  (WRITE_TIMEOUT_S at most), so a refusal still answers 04;
- driver stats go out every STATS_PERIOD_S, which is also the heartbeat.

It exits when told to, or when the runtime's end closes (the runtime died).
"""
from __future__ import annotations

import itertools
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from .image import IoPort, OutputImage
from .ipc import ChildConfig, Link
from .manager import DriverSet

GATHER_S = 0.002
STATS_PERIOD_S = 0.5
WRITE_TIMEOUT_S = 2.0


def _not_realtime() -> None:
    # a child started from a SCHED_FIFO thread would compete with the scan at its priority
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass


class _Stage:
    """The driver side of the input stage: the last update per input, taken
    whole by the sender."""

    def __init__(self, inputs: list[str]):
        self._index = {p: i for i, p in enumerate(inputs)}
        self._lock = threading.Lock()
        self._pending: dict = {}
        self.wake = threading.Event()

    def publish(self, updates) -> None:
        index = self._index
        with self._lock:
            first = not self._pending
            for u in updates:
                # an input the runtime did not list goes by its path
                self._pending[index.get(u.path, u.path)] = (u.value, u.quality, u.ts_ns)
            if first and self._pending:
                self.wake.set()

    def take(self) -> list:
        with self._lock:
            self.wake.clear()
            batch, self._pending = self._pending, {}
        flat = []
        for k, (v, q, ts) in batch.items():
            flat += (k, v, q, ts)
        return flat


class IoChild:
    def __init__(self, link: Link, cfg: ChildConfig):
        self.link = link
        self._offset = cfg.offset_ns
        self.outputs = OutputImage()
        self.stage = _Stage(cfg.inputs)
        self.port = IoPort(self.stage, self.outputs, self.clock_ns)
        self._answers: dict[int, Future] = {}
        self._ids = itertools.count()
        self._gone = threading.Event()
        self.drivers = DriverSet(cfg.maps, self.port, self._queue_write, cfg.server_types, self._event)

    def clock_ns(self) -> int:
        return time.monotonic_ns() - self._offset

    def _send(self, *msgs) -> None:
        try:
            self.link.send(*msgs)
        except OSError:
            self._gone.set()            # the runtime is gone; the reader sees the end too

    def _event(self, kind: str, data: dict) -> None:
        self._send(("e", kind, data))

    def _queue_write(self, var: str, text: str, who: str) -> None:
        from ..tags import TagError
        wid = next(self._ids)
        fut: Future = Future()
        self._answers[wid] = fut
        try:
            self._send(("w", wid, var, text, who))
            err = fut.result(WRITE_TIMEOUT_S)
        except FutureTimeout:
            raise TagError(f"the runtime did not answer within {WRITE_TIMEOUT_S:g} s") from None
        finally:
            self._answers.pop(wid, None)
        if err is not None:
            raise TagError(err)

    def _sender(self) -> None:
        next_stats = time.monotonic()
        while not self._gone.is_set():
            if self.stage.wake.wait(max(0.0, next_stats - time.monotonic())):
                time.sleep(GATHER_S)        # the rest of a burst (a poll's groups, a few frames) joins
                flat = self.stage.take()
                if flat:
                    self._send(("i", flat))
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + STATS_PERIOD_S
                self._send(("s", self.drivers.stats()))

    def _handle(self, m) -> bool:
        """Apply one message from the runtime; False: stop."""
        kind = m[0]
        if kind == "o":
            _, committed, changes = m
            self.outputs.committed_ns = committed
            if changes:
                self.outputs.values.update(changes)
                self.outputs.changed()
        elif kind == "v":
            for srv, values in zip(self.drivers.servers, m[1]):
                srv.refresh(values)
        elif kind == "a":
            fut = self._answers.get(m[1])
            if fut is not None:
                fut.set_result(m[2])
        elif kind == "c":
            self._offset = m[1]
        elif kind == "x":
            return False
        return True

    def run(self, first: list) -> None:
        if not all(self._handle(m) for m in first):    # outputs sent with the configuration
            return
        self.drivers.start()
        threading.Thread(target=self._sender, name="gridplc-io-child-send", daemon=True).start()
        self._send(("ready", os.getpid()))
        while not self._gone.is_set():
            msgs = self.link.recv()
            if msgs is None or not all(self._handle(m) for m in msgs):
                return


def main(argv: list[str]) -> int:
    _not_realtime()
    # Ctrl-C reaches the whole process group; the runtime stops this process itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    link = Link(socket.socket(fileno=int(argv[0])))
    msgs = link.recv()
    if not msgs or not isinstance(msgs[0], ChildConfig):
        return 2
    try:
        child = IoChild(link, msgs[0])
    except Exception as e:  # noqa: BLE001 - told to the runtime, which logs it
        try:
            link.send(("fatal", f"{type(e).__name__}: {e}"))
        except OSError:
            pass
        return 1
    try:
        child.run(msgs[1:])
    finally:
        child.drivers.stop(3.0)
        link.close()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)      # the drivers are stopped; a library's thread left behind must not hold the process
