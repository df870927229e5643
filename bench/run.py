"""Compiler benchmark (not a test): prints figures, asserts nothing.

    python bench/run.py [--scans N] [--lines N]

1. µs per scan of gridplc-compiled ST beside a hand-written idiomatic CPython
   version of the same logic, measured in the same run, interleaved, best of
   several rounds; the ratio is what matters (target <= 1.5x).
2. The cost of the watchdog checks on loop back-edges: the same program
   compiled with every loop instrumented, as a ratio.
3. parse + check + compile speed on a large generated source (target >= 10,000
   lines per second).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from plc_lang import codegen  # noqa: E402
from plc_lang.driver import compile_project, read_sources  # noqa: E402
from runtime.engine import Engine  # noqa: E402

SHARED = os.path.join(os.path.dirname(ROOT), "shared")
WORKLOADS = [
    ("site_protect", os.path.join(SHARED, "bench", "site_protect.st"), "handwritten_site_protect", "SiteMain"),
    ("battery_guard", os.path.join(ROOT, "programs", "examples", "battery_guard.st"), "handwritten_battery_guard", "BatteryGuard"),
]


def _engine(path: str) -> Engine:
    r = compile_project(read_sources([path]))
    if not r.ok:
        raise SystemExit(f"{path} does not compile")
    return Engine(r.program, watchdog_s=10.0)


def _time_gridplc(engine: Engine, scans: int, start: int) -> float:
    period = engine.base_period_ns
    scan = engine.scan
    t0 = time.perf_counter()
    for k in range(start, start + scans):
        scan(k * period)
    return (time.perf_counter() - t0) / scans


def _time_hand(obj, period_ms: int, scans: int, start: int) -> float:
    scan = obj.scan
    t0 = time.perf_counter()
    for k in range(start, start + scans):
        scan(k * period_ms)
    return (time.perf_counter() - t0) / scans


def bench_scans(scans: int, rounds: int) -> None:
    print(f"== scan time: {scans} scans per round, best of {rounds} rounds, interleaved")
    print(f"{'workload':<16}{'gridplc us/scan':>18}{'hand-written us/scan':>22}{'ratio':>8}")
    for name, path, modname, clsname in WORKLOADS:
        mod = __import__(modname)
        eng = _engine(path)
        hand = getattr(mod, clsname)()
        period_ms = eng.base_period_ns // 1_000_000
        g_times, h_times = [], []
        pos = 0
        for _ in range(rounds):
            g_times.append(_time_gridplc(eng, scans, pos))
            h_times.append(_time_hand(hand, period_ms, scans, pos))
            pos += scans
        g, h = min(g_times), min(h_times)
        print(f"{name:<16}{g * 1e6:>18.1f}{h * 1e6:>22.1f}{g / h:>8.2f}")
        eng.close()


def bench_watchdog_cost(scans: int, rounds: int) -> None:
    print("== watchdog back-edge checks: every loop instrumented vs the default")
    path = WORKLOADS[0][1]
    default = _engine(path)
    saved = codegen.LOOP_UNCHECKED_TRIPS_MAX
    codegen.LOOP_UNCHECKED_TRIPS_MAX = -1
    try:
        checked = _engine(path)
    finally:
        codegen.LOOP_UNCHECKED_TRIPS_MAX = saved
    a, b = [], []
    pos = 0
    for _ in range(rounds):
        a.append(_time_gridplc(default, scans, pos))
        b.append(_time_gridplc(checked, scans, pos))
        pos += scans
    print(f"site_protect: default {min(a) * 1e6:.1f} us/scan, all loops checked {min(b) * 1e6:.1f} us/scan, "
          f"ratio {min(b) / min(a):.3f}")
    default.close()
    checked.close()


def bench_compile(lines: int, rounds: int) -> None:
    from gen_source import generate
    from plc_lang.driver import check_project
    from plc_lang.parser import _lark, parse_source
    from plc_lang.diagnostics import DiagnosticSink
    from plc_lang.source import SourceFile
    text = generate(lines)
    n = text.count("\n") + 1
    src = SourceFile("generated.st", text)
    _lark()  # the parse table is built once per process; not part of the figure
    parse_t, check_t, total_t = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        parse_source(src, DiagnosticSink())
        t1 = time.perf_counter()
        check_project([src])
        t2 = time.perf_counter()
        r = compile_project([src])
        t3 = time.perf_counter()
        assert r.ok, [str(d.message) for d in r.diagnostics if d.is_error][:3]
        parse_t.append(t1 - t0)
        check_t.append(t2 - t1)
        total_t.append(t3 - t2)
    print(f"== parse + check + compile, generated source of {n} lines, median of {rounds}")
    p, c, t = statistics.median(parse_t), statistics.median(check_t), statistics.median(total_t)
    print(f"parse only: {n / p:,.0f} lines/s; parse+check: {n / c:,.0f} lines/s; "
          f"parse+check+compile: {n / t:,.0f} lines/s ({t * 1000:.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scans", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lines", type=int, default=10000)
    a = ap.parse_args()
    bench_scans(a.scans, a.rounds)
    bench_watchdog_cost(a.scans, a.rounds)
    bench_compile(a.lines, 3)


if __name__ == "__main__":
    main()
