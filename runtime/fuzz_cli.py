"""`gridplc fuzz SCENARIO.toml`: search for input trajectories that break the
scenario's invariants (runtime/fuzz.py has the [fuzz] section and the rules).

Exit codes: 0 nothing broke, 1 an invariant broke (counterexample written),
2 a usage or scenario error.
"""
from __future__ import annotations

import json
import os
import sys


def register(sub) -> None:
    p = sub.add_parser("fuzz", help="random input trajectories against a scenario's always/never/within "
                                    "expectations; writes a shrunk counterexample scenario")
    p.add_argument("scenario", help="a scenario file with a [fuzz] section")
    p.add_argument("--runs", type=int, help="simulations to run (default: [fuzz] runs, else 1000)")
    p.add_argument("--seed", type=int, help="the seed: the same seed gives the same runs and result "
                                            "(default: [fuzz] seed, else 0)")
    p.add_argument("--duration", help="simulated time of each run, e.g. 30s (default: [fuzz] duration, "
                                      "else the scenario's)")
    p.add_argument("--jobs", type=int, help="processes (default: one per core); the result does not depend on it")
    p.add_argument("--out", help="where to write the counterexample (default: SCENARIO-STEM.counterexample.toml "
                                 "in the current directory)")
    p.add_argument("--backend", choices=("auto", "native", "python"), default=None,
                   help="what runs the scans (as for `gridplc sim`; default: $GRIDPLC_BACKEND, else auto)")
    p.set_defaults(fn=cmd_fuzz)


def cmd_fuzz(a) -> int:
    from runtime.cli import UsageError, _parse_duration_ns
    try:
        import hypothesis  # noqa: F401 - checked here so the message is one line
    except ImportError:
        raise UsageError("fuzzing needs the hypothesis package: pip install hypothesis") from None
    from runtime.fuzz import fuzz, progress_line, replay, write_counterexample
    from runtime.scenario import ScenarioError
    if not os.path.isfile(a.scenario):
        raise UsageError(f"no such file: {a.scenario}")
    if a.runs is not None and a.runs < 1:
        raise UsageError("--runs must be 1 or more")
    if a.jobs is not None and a.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    duration = _parse_duration_ns(a.duration, "--duration") if a.duration else None
    jobs = a.jobs or os.cpu_count() or 1
    tty = sys.stderr.isatty()
    try:
        res = fuzz(a.scenario, runs=a.runs, seed=a.seed, duration_ns=duration, jobs=jobs,
                   progress=progress_line if tty else None, backend=a.backend)
    except ScenarioError as e:
        if tty:
            print(file=sys.stderr)
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    if tty:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)
    plan = res.plan
    name = os.path.basename(plan.scenario.path)
    print(f"fuzz {plan.scenario.name} ({name}): seed {res.seed}, runs of {plan.duration_ns / 1e9:g} s, "
          f"varying {', '.join(fi.tag for fi in plan.inputs)}")
    for x in plan.unchecked:
        print(f"  not checked while fuzzing: {x.describe()}")
    b = res.batch
    if b is None:
        print(f"PASS {res.runs} runs ({res.scans} scans): no invariant broken")
        for x in plan.invariants:
            print(f"  ok   {x.describe()}")
        print("  ok   the program does not fault")
        return 0
    v = b.violation
    print(f"FAIL {v.what}")
    print(f"  broken at t={v.t_ns / 1e9:.3f} s (scan {v.scan}), found by run {res.runs} (batch {b.index}), "
          f"shrunk in {b.shrink_runs} runs")
    if v.values:
        print(f"  values: {_values(v.values)}")
    if v.inputs:
        print(f"  inputs: {_values(v.inputs)}")
    points = sum(len(pts) for _, pts in res.tables)
    print(f"  counterexample: {len(res.tables)} inputs, {points} points, {v.t_ns / 1e9:g} s")
    out = a.out or os.path.splitext(os.path.basename(plan.scenario.path))[0] + ".counterexample.toml"
    try:
        write_counterexample(res, out)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror}") from None
    print(f"  written: {out}")
    try:
        _what, failed = replay(out, v.key)
    except ScenarioError as e:
        print("\n".join(e.problems), file=sys.stderr)
        failed = False
    print(f"  reproduce: gridplc sim --scenario {out}" + ("" if failed else "   (WARNING: it did not fail when re-run: "
                                                             "a gridplc bug, please report it)"))
    print(f"  seed: {res.seed} (gridplc fuzz {name} --seed {res.seed} finds it again)")
    return 1


def _values(d: dict) -> str:
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items())
