"""Live runtime benchmark (not a test): prints figures, asserts nothing.

    python bench/runtime_bench.py [--scans 30000] [--load]

1. Start jitter of a 10 ms task running ../shared/bench/site_protect.st on
   the real scheduler: p50 / p99 / max and overruns; with --load a second
   process keeps one core busy meanwhile.
2. Scheduler + engine overhead per scan for an empty program (no sleeping:
   the clock is advanced by hand), beside calling the empty body directly.
3. Retain snapshot cost on the scan thread for 10,000 retained variables
   (the disk write itself happens on the writer thread; see bench/retain_bench.py).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plc_lang.driver import compile_project  # noqa: E402
from plc_lang.source import SourceFile  # noqa: E402
from runtime.engine import Engine  # noqa: E402
from runtime.scheduler import Scheduler  # noqa: E402

SITE_PROTECT = os.path.join(os.path.dirname(ROOT), "shared", "bench", "site_protect.st")


def _engine(text: str, name: str = "b.st", **kw) -> Engine:
    r = compile_project([SourceFile(name, text)])
    assert r.ok, [d.message for d in r.diagnostics if d.is_error]
    return Engine(r.program, **kw)


def _burn(stop):
    x = 0
    while not stop.is_set():
        for _ in range(10000):
            x += 1


def _burn_thread(stop):
    x = 0
    while not stop.is_set():
        for _ in range(1000):
            x += 1


def jitter(scans: int, load: bool, thread_load: bool = False, rt: int | None = None) -> None:
    text = open(SITE_PROTECT).read().replace("T#100ms", "T#10ms")
    eng = _engine(text, "site_protect.st", watchdog_s=5.0, realtime_priority=rt)
    done = threading.Event()
    count = [0]

    def tick(now, due):
        eng.scan(now, due)
        count[0] += 1
        if count[0] >= scans:
            done.set()
    stop = multiprocessing.Event()
    burner = multiprocessing.Process(target=_burn, args=(stop,)) if load else None
    if burner:
        burner.start()
    tstop = threading.Event()
    tburn = threading.Thread(target=_burn_thread, args=(tstop,), daemon=True) if thread_load else None
    if tburn:
        tburn.start()
    sched = Scheduler(eng.tasks, tick, realtime_priority=rt)
    import gc
    gc.collect()
    gc.freeze()          # as LiveRuntime.start does
    sched.start()
    done.wait()
    sched.stop()
    if burner:
        stop.set()
        burner.join()
    if tburn:
        tstop.set()
        tburn.join()
    st = sched.stats[eng.tasks[0].name]
    mode = f" [{sched.realtime}]" if rt is not None else ""
    t = eng.tasks[0]
    print(f"site_protect at 10 ms, {scans} scans{' with a CPU-bound process beside it' if load else ''}{' with a CPU-bound Python thread in the same process (switch interval ' + format(sys.getswitchinterval() * 1e3, 'g') + ' ms)' if thread_load else ''}{'' if load or thread_load else ', idle'}: "
          f"start jitter p50 {st.percentile_ns(0.5) / 1e3:.0f} us, p99 {st.percentile_ns(0.99) / 1e3:.0f} us, "
          f"max {st.jitter_max_ns / 1e3:.0f} us; overruns {st.overruns}; "
          f"scan exec mean {t.exec_total_ns / t.scans / 1e3:.0f} us, max {t.exec_max_ns / 1e3:.0f} us{mode}")
    eng.close()


class _HandClock:
    """Every call moves time on by one period: every tick is due at once."""

    def __init__(self, step):
        self.t = 0
        self.step = step

    def now_ns(self):
        self.t += self.step
        return self.t

    def sleep_until(self, deadline, stop):
        pass


def overhead(scans: int) -> None:
    eng = _engine("PROGRAM Empty\nVAR x : BOOL; END_VAR\nx := x;\nEND_PROGRAM\n", interval_ns=1_000_000)
    done = threading.Event()
    n = [0]

    def tick(now, due):
        eng.scan(now, due)
        n[0] += 1
        if n[0] >= scans:
            done.set()
    sched = Scheduler(eng.tasks, tick, clock=_HandClock(1_000_000))
    t0 = time.perf_counter()
    sched.start()
    done.wait()
    dt = time.perf_counter() - t0
    sched.stop()
    obj = eng.tasks[0].instances[0][1]
    t1 = time.perf_counter()
    for _ in range(scans):
        obj.body__()
    body = (time.perf_counter() - t1) / scans
    print(f"empty program: scheduler + engine {dt / scans * 1e6:.1f} us per scan "
          f"(the body alone {body * 1e6:.2f} us)")
    eng.close()


def retain_cost() -> None:
    decls = "\n".join(f"  r{i} : REAL;" for i in range(5000)) + "\n" + "\n".join(f"  k{i} : DINT;" for i in range(5000))
    eng = _engine(f"PROGRAM Big\nVAR RETAIN\n{decls}\nEND_VAR\nr0 := r0 + 1.0;\nEND_PROGRAM\n", interval_ns=100_000_000)
    eng.retained()
    t0 = time.perf_counter()
    for _ in range(5):
        snap = eng.retained()
    dt = (time.perf_counter() - t0) / 5
    print(f"retain snapshot of {len(snap)} retained variables on the scan thread: {dt * 1e3:.1f} ms "
          f"(once per retain period; the 100 ms task keeps {100 - dt * 1e3:.0f} ms of headroom)")
    eng.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scans", type=int, default=30000)
    ap.add_argument("--load", action="store_true", help="also run with a CPU-bound process beside it")
    ap.add_argument("--thread-load", action="store_true",
                    help="also run with a CPU-bound thread in the process (the GIL's worst case)")
    ap.add_argument("--skip-jitter", action="store_true")
    ap.add_argument("--realtime", type=int, metavar="PRIO", help="also run with the scan thread at SCHED_FIFO PRIO")
    a = ap.parse_args()
    overhead(20000)
    retain_cost()
    if not a.skip_jitter:
        jitter(a.scans, False)
        if a.load:
            jitter(a.scans, True)
        if a.realtime:
            jitter(a.scans, False, rt=a.realtime)
            if a.load:
                jitter(a.scans, True, rt=a.realtime)
        if a.thread_load:
            old = sys.getswitchinterval()
            jitter(a.scans, False, thread_load=True)
            sys.setswitchinterval(0.0005)
            jitter(a.scans, False, thread_load=True)
            sys.setswitchinterval(old)


if __name__ == "__main__":
    main()
