"""`gridplc fuzz`: random input trajectories against a scenario's invariants.

A scenario file gains a [fuzz] section that says which inputs to vary and
how far and how fast they may move:

    [fuzz]
    duration = "20s"          # each run (default: the scenario's duration)
    runs = 1000               # default for --runs
    seed = 0                  # default for --seed
    hold = "1s"               # an input holds each value at least this long ...
    max_hold = "10s"          # ... and at most this long (default 10 x hold)

    [[fuzz.input]]
    tag = "Main.tMax"
    min = 20.0
    max = 70.0
    rate = 5.0                # at most 5 units per second: ramps (omit: steps)
    resolution = 0.05         # value grid (default: a thousandth of the range; 1 for integers)
    # hold / max_hold here override the section's

    [[fuzz.input]]
    tag = "Main.boost"        # a BOOL: about this share of its holds TRUE
    probability = 0.3

Each run drives every fuzzed input with a piecewise trajectory (a list of
holds: a duration and a value, reached by a ramp at `rate` or by a step);
the scenario's other inputs, faults and actions stay as they are. The
invariants are its `always`, `never` and `within` expectations, plus "the
program does not fault"; `at` expectations are not checked (their times
mean nothing in a random run), and a `within` deadline the run ends before
is not a violation.

Hypothesis generates and shrinks: fewer holds, values toward the middle of
the range (booleans toward their likelier value), holds toward `hold`, so a
counterexample is short and close to nominal. Its database is off and each
batch of runs is seeded from (seed, batch number), so a seed gives the same
runs, the same counterexample and the same report, byte for byte, whatever
--jobs is: batches of BATCH runs are shared among the processes, and the
lowest-numbered batch that finds a violation is the one reported (a batch
shrinks only toward the invariant it first broke). The one clock in the
search is Hypothesis' own five-minute cap on shrinking one failure.

The counterexample is written as an ordinary scenario (table trajectories,
cut at the failing scan) that `gridplc sim --scenario` runs and fails; fuzz
runs it that way once more before reporting, to be sure.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field

from plc_lang.diagnostics import render
from plc_lang.driver import compile_project, read_sources
from plc_lang.types import BoolType, IntType, RealType, strip_subrange

from . import tags
from .engine import Engine, EngineError
from .scenario import Scenario, ScenarioError, _run, entry_duration, entry_error, load_scenario, run_scenario
from .site import _Reporter, duration_ns

BATCH = 100                      # runs per seeded batch: the unit of work and of determinism
INVARIANTS = ("always", "never", "within")
FUZZ_KEYS = ("duration", "runs", "seed", "hold", "max_hold", "input")
INPUT_KEYS = ("tag", "min", "max", "rate", "hold", "max_hold", "resolution", "probability")


@dataclass
class FuzzInput:
    tag: str
    index: int                   # in [[fuzz.input]], for messages
    lo: float | None = None
    hi: float | None = None
    rate: float | None = None    # per second; None: steps
    hold_ns: int = 1_000_000_000
    max_hold_ns: int = 10_000_000_000
    resolution: float | None = None
    probability: float = 0.5     # BOOL: share of holds TRUE
    is_bool: bool = False        # set once the program's types are known
    is_int: bool = False
    base: float = 0.0            # value grid: base + k * resolution, k in kmin..kmax
    kmin: int = 0
    kmax: int = 0

    def picks(self) -> int:
        """How many values a draw chooses among."""
        return 1000 if self.is_bool else 10 * (2 * max(-self.kmin, self.kmax) + 1)

    def value(self, u: int):
        """A drawn number 0..picks()-1 as a value; 0, where shrinking heads, is
        the likelier BOOL and the middle of a range."""
        if self.is_bool:
            p = self.probability
            return float(u < round(1000 * p)) if p > 0.5 else float(u >= round(1000 * (1 - p)))
        where, j = u % 10, u // 10
        if where == 8:                          # a tenth of the draws each are the bounds
            return self.lo
        if where == 9:
            return self.hi
        k = (j + 1) // 2 if j % 2 else -(j // 2)     # 0, 1, -1, 2, -2 ...: the middle first
        if k <= self.kmin:
            return self.lo
        if k >= self.kmax:
            return self.hi
        v = self.base + k * self.resolution
        return float(int(round(v))) if self.is_int else float(f"{v:.12g}")


@dataclass
class FuzzPlan:
    scenario: Scenario
    inputs: list[FuzzInput]
    duration_ns: int
    runs: int
    seed: int
    invariants: list = field(default_factory=list)
    unchecked: list = field(default_factory=list)   # `at` expectations


@dataclass
class Violation:
    key: str                     # "expect[3]", or "fault"
    what: str                    # the expectation as described, or the fault
    t_ns: int
    scan: int
    values: dict
    inputs: dict


@dataclass
class BatchResult:
    index: int
    runs: int                    # runs until the first violation (all of them when none)
    example: object = None       # the shrunk example
    violation: Violation | None = None
    shrink_runs: int = 0


@dataclass
class FuzzResult:
    plan: FuzzPlan
    seed: int
    runs: int                    # runs made before the reported violation (or all)
    scans: int
    batch: BatchResult | None = None
    tables: list = field(default_factory=list)   # (FuzzInput, points) of the counterexample
    kept: list = field(default_factory=list)     # the scenario's [[input]] entries it keeps


# ------------------------------------------------------------------ the [fuzz] section
def load_plan(path: str, *, duration_ns_override: int | None = None) -> FuzzPlan:
    sc = load_scenario(path)
    rep = _Reporter(sc.path, sc.text)
    fz = sc.doc.get("fuzz")
    if not isinstance(fz, dict):
        rep.error("fuzz", "missing: a [fuzz] section with [[fuzz.input]] entries says what to vary")
        raise ScenarioError(rep.problems)
    for k in fz:
        if k not in FUZZ_KEYS:
            rep.error(f"fuzz.{k}", f"unknown key (known: {', '.join(FUZZ_KEYS)})", "fuzz")
    dur = duration_ns(rep, "fuzz.duration", fz["duration"], "fuzz") if "duration" in fz else sc.duration_ns
    hold = duration_ns(rep, "fuzz.hold", fz["hold"], "fuzz") if "hold" in fz else 1_000_000_000
    max_hold = duration_ns(rep, "fuzz.max_hold", fz["max_hold"], "fuzz") if "max_hold" in fz else None
    runs, seed = fz.get("runs", 1000), fz.get("seed", 0)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        rep.error("fuzz.runs", "a whole number of runs, 1 or more", "fuzz")
    if isinstance(seed, bool) or not isinstance(seed, int):
        rep.error("fuzz.seed", "a whole number", "fuzz")
    inputs = []
    raw_inputs = fz.get("input", [])
    if not isinstance(raw_inputs, list) or not raw_inputs:
        rep.error("fuzz", "say what to vary: add [[fuzz.input]] entries with tag, min and max", "fuzz")
        raw_inputs = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_inputs):
        fi = _fuzz_input(rep, i, raw, hold or 1_000_000_000, max_hold)
        if fi is None:
            continue
        if fi.tag in seen:
            entry_error(rep, "fuzz.input", i, "tag", f"'{fi.tag}' is already varied by fuzz.input[{seen[fi.tag]}]")
        seen[fi.tag] = i
        inputs.append(fi)
    if duration_ns_override is not None:
        dur = duration_ns_override
    if dur is not None and dur <= 0:
        rep.error("fuzz.duration", "must be greater than zero", "fuzz")
    invariants = [x for x in sc.expects if x.kind in INVARIANTS]
    if not invariants and not rep.problems:
        rep.error("expect", "fuzzing checks `always`, `never` and `within` expectations: the scenario has none",
                  "expect")
    if rep.problems:
        raise ScenarioError(rep.problems)
    return FuzzPlan(sc, inputs, dur, runs, seed, invariants, [x for x in sc.expects if x.kind not in INVARIANTS])


def _number(rep, i, raw, key):
    v = raw.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        entry_error(rep, "fuzz.input", i, key, f"expected a number, found {v!r}")
        return None
    return float(v)


def _fuzz_input(rep, i: int, raw, hold: int, max_hold: int | None) -> FuzzInput | None:
    if not isinstance(raw, dict):
        entry_error(rep, "fuzz.input", i, None, "write each input as [[fuzz.input]]")
        return None
    for k in raw:
        if k not in INPUT_KEYS:
            entry_error(rep, "fuzz.input", i, k, f"unknown key (known: {', '.join(INPUT_KEYS)})")
    if not isinstance(raw.get("tag"), str):
        entry_error(rep, "fuzz.input", i, None, "missing `tag`: the input to vary")
        return None
    fi = FuzzInput(raw["tag"], i)
    fi.lo, fi.hi = _number(rep, i, raw, "min"), _number(rep, i, raw, "max")
    fi.rate, fi.resolution = _number(rep, i, raw, "rate"), _number(rep, i, raw, "resolution")
    p = _number(rep, i, raw, "probability")
    if p is not None:
        if not 0.0 <= p <= 1.0:
            entry_error(rep, "fuzz.input", i, "probability", "a number from 0.0 to 1.0")
        fi.probability = p
    if fi.rate is not None and fi.rate <= 0:
        entry_error(rep, "fuzz.input", i, "rate", "must be greater than zero (omit it for steps)")
    if fi.resolution is not None and fi.resolution <= 0:
        entry_error(rep, "fuzz.input", i, "resolution", "must be greater than zero")
    if fi.lo is not None and fi.hi is not None and fi.lo > fi.hi:
        entry_error(rep, "fuzz.input", i, "max", f"max {raw['max']} is below min {raw['min']}")
    fi.hold_ns = _entry_duration(rep, i, raw, "hold", hold)
    fi.max_hold_ns = _entry_duration(rep, i, raw, "max_hold", max_hold if max_hold is not None else 10 * fi.hold_ns)
    if fi.hold_ns <= 0:
        entry_error(rep, "fuzz.input", i, "hold", "must be greater than zero")
    elif fi.max_hold_ns < fi.hold_ns:
        entry_error(rep, "fuzz.input", i, "max_hold", "must not be shorter than hold")
    return fi


def _entry_duration(rep, i, raw, key, default):
    if key not in raw:
        return default
    ns = entry_duration(rep, "fuzz.input", i, key, raw[key])
    return default if ns is None else ns


# ------------------------------------------------------------------ running examples
class Runner:
    """The compiled program and everything one run needs, built once per process."""

    def __init__(self, plan: FuzzPlan, backend: str | None = None):
        from .backend import BackendError, select
        self.plan = plan
        self.backend = backend
        sc = plan.scenario
        result = compile_project(read_sources(sc.sources))
        if not result.ok:
            raise ScenarioError([render([d for d in result.diagnostics if d.is_error], result.sources, "short")])
        try:
            self.program = select(result.program, backend)
        except BackendError as e:
            raise ScenarioError([f"{sc.path}: {e}"]) from None
        eng = self._engine()
        try:
            self.period = eng.base_period_ns
            self._bind(eng)
        finally:
            eng.close()
        self.strategy = self._strategy()

    def _engine(self) -> Engine:
        sc = self.plan.scenario
        try:
            return Engine(self.program, program_name=sc.program, interval_ns=sc.interval_ns, watchdog_s=10.0)
        except EngineError as e:
            raise ScenarioError([f"{sc.path}: {e}"]) from None

    def _bind(self, eng: Engine) -> None:
        sc = self.plan.scenario
        rep = _Reporter(sc.path, sc.text)
        for fi in self.plan.inputs:
            try:
                t = eng.scalar_tag(fi.tag, "fuzz input")
            except tags.TagError as e:
                entry_error(rep, "fuzz.input", fi.index, "tag", str(e))
                continue
            fi.tag = t.path
            _grid(rep, fi, strip_subrange(t.type))
        fuzzed = {fi.tag for fi in self.plan.inputs}
        kept = []
        for it in sc.inputs:
            try:
                if it["kind"] == "can_log" or eng.tag(it["tag"]).path not in fuzzed:
                    kept.append(it)
            except tags.TagError:
                kept.append(it)          # the scenario run reports it
        self.kept = [dict(it, _i=j) for j, it in enumerate(kept)]
        self.kept_index = [it["_i"] for it in kept]       # in the file's [[input]] list
        if rep.problems:
            raise ScenarioError(rep.problems)

    def _strategy(self):
        from hypothesis import strategies as st
        per = []
        for fi in self.plan.inputs:
            hold = _ints(st, (fi.max_hold_ns - fi.hold_ns) // self.period)
            most = max(1, math.ceil(self.plan.duration_ns / fi.hold_ns) + 1)
            per.append(st.lists(st.tuples(hold, _ints(st, fi.picks() - 1)), min_size=1, max_size=most))
        return st.tuples(*per)

    def tables(self, example) -> list[list[tuple[int, float]]]:
        return [_points(fi, segs, self.plan.duration_ns, self.period) for fi, segs in zip(self.plan.inputs, example)]

    def scenario_for(self, tables, duration: int, expects) -> Scenario:
        n = len(self.kept)
        made = [_table_input(fi, pts, n + j) for j, (fi, pts) in enumerate(zip(self.plan.inputs, tables))]
        return dataclasses.replace(self.plan.scenario, inputs=self.kept + made, duration_ns=duration,
                                   expects=[x.fresh() for x in expects])

    def simulate(self, example, watch: str | None = None) -> Violation | None:
        """Run one example; the first violation of the watched invariant (all when None)."""
        plan = self.plan
        watched = [x for x in plan.invariants if watch is None or x.key == watch]
        sc = self.scenario_for(self.tables(example), plan.duration_ns, watched)
        eng = self._engine()
        try:
            r = _run(sc, eng, [], stop_at_failure=True, end_checks=False)
            fuzzed = [(fi.tag, eng.tag(fi.tag)) for fi in plan.inputs]
            for x in r.expects:
                if not x.ok:
                    return Violation(x.key, x.describe(), x.fail_t_ns, x.fail_scan, x.fail_values,
                                     {p: x.fail_inputs[p] for p, _ in fuzzed if p in x.fail_inputs})
            if r.fault is not None and watch in (None, "fault"):
                return Violation("fault", f"the program faulted: {r.fault}", r.fault.time_ns, r.fault.scan, {},
                                 {p: tags.to_json_value(t.get(), t.type) for p, t in fuzzed})
            return None
        finally:
            eng.close()


# Hypothesis now and then draws an integer from the literals of the modules
# loaded at the time, which differ between a CLI run, a test run and a worker.
# Drawn from a range no literal reaches, shifted back, the runs depend on the
# seed alone; they shrink toward 0 all the same.
_OFFSET = 3 << 60


def _ints(st, n: int):
    return st.integers(_OFFSET, _OFFSET + n).map(lambda u: u - _OFFSET)


def _grid(rep, fi: FuzzInput, ts) -> None:
    if isinstance(ts, BoolType):
        fi.is_bool = True
        for key in ("min", "max", "rate", "resolution"):
            if getattr(fi, {"min": "lo", "max": "hi"}.get(key, key)) is not None:
                entry_error(rep, "fuzz.input", fi.index, key, f"'{fi.tag}' is a BOOL: give `probability`, not `{key}`")
        return
    if not isinstance(ts, (IntType, RealType)):
        entry_error(rep, "fuzz.input", fi.index, "tag",
                    f"'{fi.tag}' is {ts}: fuzzing varies BOOL, integer and real inputs")
        return
    if fi.lo is None or fi.hi is None:
        entry_error(rep, "fuzz.input", fi.index, None, f"'{fi.tag}' needs `min` and `max`: the range to vary it in")
        return
    if isinstance(ts, IntType):
        fi.is_int = True
        fi.lo, fi.hi = float(math.ceil(fi.lo)), float(math.floor(fi.hi))
        fi.resolution = max(1.0, float(round(fi.resolution or 1.0)))
        fi.base = float((int(fi.lo) + int(fi.hi)) // 2)
    else:
        fi.resolution = fi.resolution or ((fi.hi - fi.lo) / 1000 or 1.0)
        fi.base = (fi.lo + fi.hi) / 2
    # the middle of the range is k = 0, where shrinking heads; the ends are kmin and kmax
    fi.kmin = -math.ceil((fi.base - fi.lo) / fi.resolution - 1e-9)
    fi.kmax = math.ceil((fi.hi - fi.base) / fi.resolution - 1e-9)


def _points(fi: FuzzInput, segs, duration: int, period: int) -> list[tuple[int, float]]:
    """The holds as table points: a step (two points at one time) or a ramp at `rate`."""
    pts: list[tuple[int, float]] = []
    t = 0
    cur = None
    for dk, pick in segs:
        if t > duration:
            break
        v = fi.value(pick)
        d = fi.hold_ns + dk * period
        if cur is None:
            pts.append((0, v))
            cur = v
        elif v != cur:
            if pts[-1][0] != t:
                pts.append((t, cur))
            if fi.rate is None or fi.is_bool:
                pts.append((t, v))
                cur = v
            else:
                ramp = max(1, math.ceil(abs(v - cur) / fi.rate * 1000 - 1e-9)) * 1_000_000   # whole ms
                if ramp <= d:
                    pts.append((t + ramp, v))
                    cur = v
                else:
                    cur = float(f"{cur + (v - cur) * d / ramp:.12g}")
                    pts.append((t + d, cur))
        t += d
    return pts


def _table_input(fi: FuzzInput, pts, i: int) -> dict:
    if len(pts) == 1:
        return {"tag": fi.tag, "kind": "constant", "value": pts[0][1], "_i": i}
    return {"tag": fi.tag, "kind": "table", "points_ns": pts, "_i": i}


def cut(pts, t_end: int):
    """The points that decide the trajectory up to t_end: a flat tail adds nothing."""
    keep = [p for p in pts if p[0] <= t_end]
    nxt = next((p for p in pts if p[0] > t_end), None)
    if nxt is not None and nxt[1] != keep[-1][1]:
        keep.append(nxt)
    return keep


# ------------------------------------------------------------------ searching
def batch_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"gridplc-fuzz:{seed}:{index}".encode()).digest()[:8], "big")


@contextmanager
def _private_storage():
    """Hypothesis keeps a cache of source literals under ./.hypothesis even
    with its database off: give it a temporary home, not the user's directory."""
    import tempfile
    from hypothesis import configuration
    old = getattr(configuration, "__hypothesis_home_directory", None)
    with tempfile.TemporaryDirectory(prefix="gridplc-fuzz-") as home:
        configuration.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            configuration.set_hypothesis_home_dir(old)


def search_batch(runner: Runner, index: int, size: int, seed: int) -> BatchResult:
    with _private_storage():
        return _search(runner, index, size, seed)


def _search(runner: Runner, index: int, size: int, seed: int) -> BatchResult:
    from hypothesis import HealthCheck, Phase, Verbosity, find, settings
    from hypothesis.errors import NoSuchExample
    calls = [0, 0]               # runs so far; the run that first broke something
    target: list[str] = []

    def breaks(example) -> bool:
        calls[0] += 1
        v = runner.simulate(example, target[0] if target else None)
        if v is None:
            return False
        if not target:           # from here on, shrink toward this invariant only
            target.append(v.key)
            calls[1] = calls[0]
        return True
    cfg = settings(database=None, max_examples=size, deadline=None, derandomize=False,
                   phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
                   report_multiple_bugs=False, verbosity=Verbosity.quiet, print_blob=False)
    try:
        example = find(runner.strategy, breaks, settings=cfg, random=random.Random(batch_seed(seed, index)))
    except NoSuchExample:
        return BatchResult(index, calls[0])
    v = runner.simulate(example, target[0])
    return BatchResult(index, calls[1], example, v, calls[0] - calls[1])


_WORKER: dict = {}


def _init_worker(path: str, duration_ns: int | None, backend: str | None = None) -> None:
    if "runner" not in _WORKER:
        _WORKER["runner"] = Runner(load_plan(path, duration_ns_override=duration_ns), backend)


def _work(job: tuple[int, int, int]) -> BatchResult:
    index, size, seed = job
    return search_batch(_WORKER["runner"], index, size, seed)


def fuzz(path: str, *, runs: int | None = None, seed: int | None = None, duration_ns: int | None = None,
         jobs: int = 1, progress=None, backend: str | None = None) -> FuzzResult:
    """Raises ScenarioError for a scenario or program that cannot be fuzzed."""
    plan = load_plan(path, duration_ns_override=duration_ns)
    runner = Runner(plan, backend)
    runs = plan.runs if runs is None else runs
    seed = plan.seed if seed is None else seed
    work = [(i, min(BATCH, runs - i * BATCH), seed) for i in range(math.ceil(runs / BATCH))]
    done: dict[int, BatchResult] = {}

    def settled() -> BatchResult | None | bool:
        """The lowest failing batch once every batch below it is done; False while undecided."""
        for i in range(len(work)):
            if i not in done:
                return False
            if done[i].violation is not None:
                return done[i]
        return None
    outcome = False
    if jobs <= 1 or len(work) == 1:
        for job in work:
            done[job[0]] = search_batch(runner, *job)
            if progress:
                progress(sum(b.runs for b in done.values()), runs)
            if done[job[0]].violation is not None:
                break
        outcome = settled()
    else:
        import multiprocessing
        _WORKER["runner"] = runner      # forked workers start with it; others build their own
        with multiprocessing.Pool(min(jobs, len(work)), _init_worker, (path, duration_ns, backend)) as pool:
            for b in pool.imap_unordered(_work, work, chunksize=1):
                done[b.index] = b
                if progress:
                    progress(sum(x.runs for x in done.values()), runs)
                outcome = settled()
                if outcome is not False:
                    break               # leaving the pool stops the batches still running
    if outcome is None:
        made = sum(b.runs for b in done.values())
        return FuzzResult(plan, seed, made, made * (plan.duration_ns // runner.period + 1))
    before = sum(done[i].runs for i in range(outcome.index))
    tables = [cut(pts, outcome.violation.t_ns) for pts in runner.tables(outcome.example)]
    return FuzzResult(plan, seed, before + outcome.runs, 0, outcome, list(zip(plan.inputs, tables)),
                      runner.kept_index)


# ------------------------------------------------------------------ the counterexample file
def dur_text(ns: int) -> str:
    for unit, size in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(x)}" for k, x in v.items()) + " }"
    return str(v)                   # TOML dates and times print as TOML


def _table_block(name: str, d: dict) -> str:
    return f"\n[[{name}]]\n" + "".join(f"{_key(k)} = {_toml(v)}\n" for k, v in d.items())


def counterexample_text(res: FuzzResult, out_path: str) -> str:
    plan, b = res.plan, res.batch
    sc, doc = plan.scenario, plan.scenario.doc
    v = b.violation
    here = os.path.dirname(os.path.abspath(out_path))
    src_dir = os.path.dirname(sc.path)

    def rel(p: str) -> str:
        return os.path.relpath(os.path.normpath(os.path.join(src_dir, p)), here)
    head = doc.get("scenario", {})
    out = [f"# A counterexample found by `gridplc fuzz {os.path.basename(sc.path)} --seed {res.seed}`",
           f"# (run {b.runs} of batch {b.index}, shrunk in {b.shrink_runs} runs): {v.what}",
           f"# broke at t={v.t_ns / 1e9:.3f} s. Run it: gridplc sim --scenario {os.path.basename(out_path)}",
           "", "[scenario]", f"name = {_toml('counterexample: ' + sc.name)}",
           f"sources = {_toml([os.path.relpath(s, here) for s in sc.sources])}",
           f"duration = {_toml(dur_text(v.t_ns))}"]
    for k in ("interval", "program", "seed"):
        if k in head:
            out.append(f"{k} = {_toml(head[k])}")
    if "io_map" in head:
        out.append(f"io_map = {_toml(rel(head['io_map']))}")
    text = "\n".join(out) + "\n"
    if doc.get("initial"):
        text += "\n[initial]\n" + "".join(f"{_key(k)} = {_toml(x)}\n" for k, x in doc["initial"].items())
    for i in res.kept:
        entry = dict(doc["input"][i])
        for k in ("file", "can_log", "dbc"):         # the file names an [[input]] may hold
            if isinstance(entry.get(k), str):
                entry[k] = rel(entry[k])
        text += _table_block("input", entry)
    for fi, pts in res.tables:
        val = (lambda x: bool(x)) if fi.is_bool else (lambda x: int(x) if fi.is_int else x)
        if len(pts) == 1:
            text += _table_block("input", {"tag": fi.tag, "kind": "constant", "value": val(pts[0][1])})
        else:
            text += (f"\n[[input]]\ntag = {_toml(fi.tag)}\nkind = \"table\"\npoints = [\n"
                     + "".join(f"  [{_toml(dur_text(t))}, {_toml(val(x))}],\n" for t, x in pts) + "]\n")
    for name in ("fault", "action"):
        for raw in doc.get(name, []):
            text += _table_block(name, raw)
    if v.key == "fault":
        text += "\n# the failure is the runtime fault; a scenario needs an expectation all the same\n" \
                "[[expect]]\nalways = \"TRUE\"\n"
    else:
        text += _table_block("expect", doc["expect"][int(v.key[len("expect["):-1])])
    return text


def write_counterexample(res: FuzzResult, out_path: str) -> str:
    text = counterexample_text(res, out_path)
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return text


def replay(out_path: str, key: str):
    """Run the written file as `gridplc sim --scenario` does: (expectation or fault, failed?)."""
    r = run_scenario(load_scenario(out_path))
    if key == "fault":
        return r.fault, r.fault is not None
    x = next((x for x in r.expects if not x.ok), None)
    return x, x is not None


def progress_line(done: int, total: int) -> None:
    print(f"\rfuzz: {done}/{total} runs", end="", file=sys.stderr, flush=True)
