"""Offline validation benchmark (not a test): prints figures, asserts nothing.

    python bench/sim_bench.py [--hours 1] [--repeat 3] [--fuzz-runs 200]

On ../shared/bench/site_protect.st at its 100 ms task, on both backends
(runtime/backend.py: native C and Python, bit-identical results):
1. speed-up of a plain scenario run (one input, three invariants) over real
   time, for --hours of plant time, beside the bare engine (Engine.run) so
   the runner's own share per scan shows; the same split for the small
   guard program of the tests, where the runner's share is visible;
2. the cost of --trace on 20 tags, as a ratio to the same run without it
   (interleaved, best of --repeat);
3. the cost of --coverage (compile_project(..., coverage=True)), likewise;
4. fuzzing throughput: simulated scans per second with both cores (and with
   one), for site_protect and for the small guard program of the tests,
   where Hypothesis' own work per run dominates.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plc_lang.driver import compile_project, read_sources  # noqa: E402
from runtime.backend import select  # noqa: E402
from runtime.engine import Engine  # noqa: E402
from runtime.fuzz import fuzz  # noqa: E402
from runtime.scenario import _run, load_scenario, run_scenario  # noqa: E402

SITE_PROTECT = os.path.join(os.path.dirname(ROOT), "shared", "bench", "site_protect.st")
GUARD_FUZZ = os.path.join(ROOT, "tests", "scenarios", "guard_fuzz.toml")

TRACED = ([f"Main.racks[{r}].allowedPower" for r in range(1, 9)] + [f"Main.racks[{r}].state" for r in range(1, 9)]
          + ["Main.dispatch", "Main.available", "Main.online", "Main.demand"])


def _scenario(d: str, duration: str) -> str:
    p = os.path.join(d, "site.toml")
    with open(p, "w") as f:
        f.write(f'[scenario]\nname = "site protect"\nsources = ["{SITE_PROTECT}"]\nduration = "{duration}"\n'
                '[[input]]\ntag = "Main.siteLimit"\nkind = "sine"\namplitude = 300.0\noffset = 1300.0\n'
                'period = "10m"\n'
                '[[expect]]\nalways = "Main.dispatch <= Main.siteLimit"\n'
                '[[expect]]\nnever = "Main.online > 8"\n'
                '[[expect]]\nalways = "Main.available >= 0.0"\n'
                '[fuzz]\nhold = "1s"\nmax_hold = "5s"\n'
                '[[fuzz.input]]\ntag = "Main.siteLimit"\nmin = 0.0\nmax = 2000.0\nrate = 200.0\n')
    return p


def _timed(fn) -> float:
    """CPU seconds of this process: on a machine shared with other work, closer
    to what an idle core would take than wall time (single-process figures only)."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _run_with(sc, program, trace_tags=()):
    eng = Engine(program, program_name=sc.program, interval_ns=sc.interval_ns, watchdog_s=10.0)
    try:
        sc = type(sc)(**{**sc.__dict__, "expects": [x.fresh() for x in sc.expects]})
        r = _run(sc, eng, list(trace_tags))
        assert r.passed, [(x.describe(), x.fail_values) for x in r.expects if not x.ok]
    finally:
        eng.close()


def _programs(sources) -> dict:
    """backend -> the program to run (runtime/backend.py)."""
    py = compile_project(read_sources(sources)).program
    return {"python": py, "native": select(py, "native")}


def speedup(d: str, hours: float) -> None:
    plant_s = hours * 3600
    path = _scenario(d, f"{int(plant_s)}s")
    sc = load_scenario(path)
    scans = int(plant_s * 10) + 1
    progs = _programs(sc.sources)
    cpu_of = {}
    for backend in ("native", "python"):
        run_scenario(sc, backend=backend)            # warm: the native library is built and cached once
        w0 = time.perf_counter()
        cpu = _timed(lambda: run_scenario(sc, backend=backend))
        wall = time.perf_counter() - w0
        cpu_of[backend] = cpu
        eng = Engine(progs[backend], watchdog_s=10.0)
        n = min(scans, 6000)
        bare = _timed(lambda: eng.run(n)) / n
        eng.close()
        per_scan = cpu / scans
        print(f"1. plain scenario, {backend} backend, {hours:g} h of plant time ({scans} scans of 100 ms): "
              f"{cpu:.2f} s CPU ({wall:.2f} s wall), speed-up {plant_s / cpu:,.0f}x real time "
              f"({plant_s / wall:,.0f}x by the wall clock); a day would take {cpu * 24 / hours:.1f} s")
        print(f"   per scan {per_scan * 1e6:.1f} us: the bare engine (Engine.run) {bare * 1e6:.1f} us, "
              f"the runner (input, 3 invariants) {max(0.0, per_scan - bare) * 1e6:.1f} us; "
              f"the ceiling with a free runner is {0.1 / bare:,.0f}x")
    print(f"   native / python: {cpu_of['python'] / cpu_of['native']:.1f}x faster, same trace (tests/test_native.py)")


def overhead(d: str, repeat: int) -> None:
    """The runner's own cost per scan where the program is small (guard.st)."""
    p = os.path.join(d, "guard.toml")
    with open(p, "w") as f:
        f.write(f'[scenario]\nsources = ["{os.path.join(ROOT, "tests", "scenarios", "guard.st")}"]\n'
                'interval = "100ms"\nduration = "3000s"\n'
                '[[input]]\ntag = "Main.tMax"\nkind = "sine"\namplitude = 10.0\noffset = 40.0\nperiod = "60s"\n'
                '[[input]]\ntag = "Main.request"\nkind = "table"\n'
                'points = [["0s", 0.0], ["1000s", 150.0], ["3000s", 50.0]]\n'
                '[[expect]]\nalways = "Main.pCmd <= Main.limit"\n'
                '[[expect]]\nnever = "Main.trip AND Main.pCmd > 0.0"\n'
                '[[expect]]\nwithin = "600ms"\nafter = "Main.hot.Q"\nexpect = "Main.trip"\n')
    sc = load_scenario(p)
    scans = 30001
    for backend, program in _programs(sc.sources).items():
        def bare():
            eng = Engine(program, interval_ns=sc.interval_ns, watchdog_s=10.0)
            eng.declare_input("Main.tMax")
            eng.declare_input("Main.request")
            eng.run(scans)
            eng.close()
        b = min(_timed(bare) for _ in range(repeat)) / scans       # interleaving matters less with CPU time
        r = min(_timed(lambda: _run_with(sc, program)) for _ in range(repeat)) / scans
        print(f"   guard.st (2 inputs, 3 invariants), {backend}: {r * 1e6:.1f} us/scan, of which the bare engine "
              f"{b * 1e6:.1f} us, the runner {(r - b) * 1e6:.1f} us; speed-up {0.1 / r:,.0f}x")


def ratio(d: str, repeat: int, minutes: float) -> None:
    path = _scenario(d, f"{int(minutes * 60)}s")
    sc = load_scenario(path)
    progs = _programs(sc.sources)
    cov_prog = compile_project(read_sources(sc.sources), coverage=True).program
    runs = {"plain python": lambda: _run_with(sc, progs["python"]),
            "plain native": lambda: _run_with(sc, progs["native"]),
            "trace python": lambda: _run_with(sc, progs["python"], TRACED),
            "trace native": lambda: _run_with(sc, progs["native"], TRACED),
            "coverage": lambda: _run_with(sc, cov_prog)}
    best = dict.fromkeys(runs, 1e9)
    for _ in range(repeat):             # interleaved, so load from other processes hits all alike
        for k, fn in runs.items():
            best[k] = min(best[k], _timed(fn))
    scans = int(minutes * 600) + 1
    us = {k: v / scans * 1e6 for k, v in best.items()}
    for b in ("native", "python"):
        print(f"2. --trace of {len(TRACED)} tags, {b}: {best['trace ' + b] / best['plain ' + b]:.3f}x a plain run "
              f"({us['plain ' + b]:.1f} -> {us['trace ' + b]:.1f} us/scan, best of {repeat}, {minutes:g} min of "
              "plant time)")
    print(f"3. --coverage (counters run on the Python backend): {best['coverage'] / best['plain python']:.3f}x a "
          f"plain Python run, {best['coverage'] / best['plain native']:.1f}x a plain native one "
          f"({us['coverage']:.0f} us/scan)")


def fuzzing(d: str, runs: int) -> None:
    path = _scenario(d, "10s")
    for name, p, n in (("site_protect, runs of 10 s", path, runs), ("guard.st, runs of 10 s", GUARD_FUZZ, runs * 5)):
        for backend in ("native", "python"):
            for jobs in (1, 2):
                t0 = time.perf_counter()            # wall time: the workers' CPU is not this process's
                res = fuzz(p, runs=n, seed=1, jobs=jobs, backend=backend)
                t = time.perf_counter() - t0
                if res.batch is not None:
                    print(f"4. fuzz {name}: found {res.batch.violation.what}: no throughput figure")
                    continue
                print(f"4. fuzz {name}, {backend}, {res.runs} runs, --jobs {jobs}: {t:.1f} s, "
                      f"{res.scans / t:,.0f} simulated scans/s, {res.runs / t:,.0f} runs/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1.0, help="plant time of the speed-up run")
    ap.add_argument("--minutes", type=float, default=5.0, help="plant time of each ratio run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fuzz-runs", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        speedup(d, a.hours)
        overhead(d, a.repeat)
        ratio(d, a.repeat, a.minutes)
        fuzzing(d, a.fuzz_runs)


if __name__ == "__main__":
    main()
