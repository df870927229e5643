"""The scan watchdog: wall time, the one clock a scan may be judged by.

A runaway loop cannot be interrupted from outside in CPython, so the
generated code checks a flag at loop back-edges (`if wd__[0]: ...`, about
30 ns) and this thread raises the flag once the armed deadline passes. The
deadline is read only here; it never reaches program logic, so determinism
holds for every scan that does not overrun.
"""
from __future__ import annotations

import threading
import time


class Watchdog:
    def __init__(self, flag: list, timeout_s: float, realtime_priority: int | None = None):
        self.flag = flag
        self.timeout_s = timeout_s
        self._deadline = None
        self._gen = 0
        self._wake = threading.Event()
        self._stop = False
        self._rt = realtime_priority
        self._thread = threading.Thread(target=self._run, name="gridplc-watchdog", daemon=True)
        self._thread.start()

    def arm(self, timeout_s: float | None = None) -> None:
        self.flag[0] = False
        self._gen += 1
        self._deadline = time.perf_counter() + (self.timeout_s if timeout_s is None else timeout_s)

    def disarm(self) -> None:
        self._deadline = None
        self.flag[0] = False

    def close(self) -> None:
        self._stop = True
        self._wake.set()

    def _run(self) -> None:
        # Poll at a fraction of the timeout: cheap, and no per-scan syscalls.
        period = max(0.001, min(0.05, self.timeout_s / 10))
        if self._rt is not None:
            from .scheduler import set_realtime
            set_realtime(self._rt + 1)
        while not self._stop:
            self._wake.wait(period)
            gen, d = self._gen, self._deadline
            # raise the flag only for the scan that armed this deadline
            if d is not None and time.perf_counter() > d and gen == self._gen:
                self.flag[0] = True
