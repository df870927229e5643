"""Coverage benchmark (not a test): prints figures, asserts nothing.

    python bench/coverage_bench.py [--scans N] [--rounds N] [FILE.st ...]

µs (thread CPU time) per scan of site_protect.st compiled plain and
compiled with coverage counters (`compile_project(..., coverage=True)`),
measured in the same run, interleaved, best of many short rounds; the ratio
is the cost of coverage.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plc_lang.driver import compile_project, read_sources  # noqa: E402
from runtime.engine import Engine  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(ROOT), "shared", "bench", "site_protect.st")


def _engine(paths: list[str], coverage: bool) -> Engine:
    r = compile_project(read_sources(paths), coverage=coverage)
    if not r.ok:
        raise SystemExit(f"{' '.join(paths)} does not compile")
    return Engine(r.program, watchdog_s=10.0)


def _time(engine: Engine, scans: int, start: int) -> float:
    """CPU seconds of this thread per scan: time other processes take from
    this shared machine does not count."""
    period = engine.base_period_ns
    scan = engine.scan
    t0 = time.thread_time()
    for k in range(start, start + scans):
        scan(k * period)
    return (time.thread_time() - t0) / scans


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", default=[DEFAULT], help="one project (default: site_protect.st)")
    ap.add_argument("--scans", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=25)
    a = ap.parse_args()
    plain, counted = _engine(a.files, False), _engine(a.files, True)
    cov = counted.program.coverage
    points = len(cov.points)
    branches = sum(p.kind == "branch" for p in cov.points)
    p_times, c_times = [], []
    pos = 0
    for _ in range(a.rounds):
        p_times.append(_time(plain, a.scans, pos))
        c_times.append(_time(counted, a.scans, pos))
        pos += a.scans
    p, c = min(p_times), min(c_times)
    print(f"== coverage cost: {', '.join(os.path.basename(f) for f in a.files)}, {a.scans} scans per round, best of {a.rounds}, interleaved")
    print(f"{points - branches} statements, {branches} branches, {len(cov.counts)} counters")
    print(f"plain {p * 1e6:.1f} us/scan, with coverage {c * 1e6:.1f} us/scan, ratio {c / p:.3f}")
    per_scan = sum(cov.counts) / (a.rounds * a.scans)
    print(f"counter increments per scan: {per_scan:.0f}")
    plain.close()
    counted.close()


if __name__ == "__main__":
    main()
