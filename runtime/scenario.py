"""Scenario files: inputs over time, injected faults, operator actions and
expectations, run on the virtual clock (`gridplc sim --scenario FILE`).

    [scenario]
    name = "over-temperature derate"
    sources = ["../site.st"]        # relative to this file
    duration = "60s"
    # interval = "100ms"; program = "Main"   (only without a CONFIGURATION)
    seed = 1
    # io_map = "../io_maps/site.toml"   # optional: timeouts, substitutes, ranges and
    #                                   # devices of the inputs, safe values of the outputs

    [initial]
    "Main.siteLimit" = 1500.0

    [[input]]                        # one trajectory per tag
    tag = "Main.tMax"
    kind = "ramp"                    # constant | step | ramp | table | sine | noise | csv
    from = "10s"
    to = "40s"
    start = 25.0
    end = 60.0

    [[fault]]
    tag = "Main.tMax"
    kind = "stuck"                   # stuck | offset | drift | drop | stale | bad
    from = "20s"
    to = "25s"
    [[fault]]
    device = "bms"                   # comm_loss: a device of the io_map goes silent
    kind = "comm_loss"
    from = "30s"
    to = "40s"

    [[action]]
    at = "50s"
    write = "Main.resetCmd"
    value = "TRUE"                   # or: force/release = tag; reset = task (mode = "warm")

    [[expect]]
    at = "7s"
    expect = "Main.derate < 0.8"
    [[expect]]
    within = "200ms"
    after = "Main.tMax > 55.0"
    expect = "Main.trip"
    [[expect]]
    always = "Main.pCmd <= Main.dischargeLimit"
    [[expect]]
    never = "Main.contactor AND Main.trip"

Input trajectories: `constant` (value), `step` (at, before, after), `ramp`
(from, to, start, end | rate), `table` (points = [["0s", 20.0], ["5s", 40.0]],
linear between points; two points at one time make a jump there), `sine`
(amplitude, offset, period), `noise` (mean, sigma), `csv` (file, time_column,
column), `can_log` (a candump/ASC capture decoded through a DBC; see
_can_log_entry).

Faults change what the program is given, not the trajectory: `stuck` holds the
last value, `offset` adds `value`, `drift` adds `rate` per second since the
fault began, `drop` loses each update with `probability` (the value and its
source timestamp stay old, so an io_map timeout can make it stale); these keep
the quality GOOD, as a lying sensor does. `stale` and `bad` hold the value and
set the quality (IO_OK(x) is FALSE); after `to` the point is GOOD again with
fresh values. `comm_loss` silences every input point of an io_map device: no
updates, so each point goes STALE once its timeout passes.

With an io_map, its input points that no [[input]] drives are fed their
initial value, GOOD, every scan (a quiet field), and comm_loss applies to them.

Everything is deterministic: noise and dropped frames come from seeded
generators advanced once per scan, and time is the virtual clock. A
`[fuzz]` section is read by runtime/fuzz.py (`gridplc fuzz`).
"""
from __future__ import annotations

import bisect
import csv
import dataclasses
import math
import os
import random
import re
import tomllib
from dataclasses import dataclass, field

from plc_lang.driver import compile_project, read_sources
from plc_lang.diagnostics import render
from plc_lang.literals import LiteralError, parse_duration_ns

from . import tags
from .engine import Engine, EngineError
from .expect import CompiledExpr, ExpectError, compile_expr, reader
from .io.config import IoMap
from .io.quality import BAD, GOOD, STALE
from .site import _Reporter, duration_ns, source_paths


class ScenarioError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


TRAJECTORIES = ("constant", "step", "ramp", "table", "sine", "noise", "csv", "can_log")
FAULTS = ("stuck", "offset", "drift", "drop", "stale", "bad", "comm_loss")
SECTIONS = ("scenario", "initial", "input", "fault", "action", "expect", "fuzz")
SCENARIO_KEYS = ("duration", "interval", "io_map", "name", "program", "seed", "sources")


@dataclass
class Expectation:
    kind: str                  # at, within, always, never, logged
    text: str
    at_ns: int = 0
    within_ns: int = 0
    after: str | None = None
    key: str = ""
    expr: CompiledExpr | None = None
    cond: CompiledExpr | None = None
    ok: bool = True
    fail_scan: int | None = None
    fail_t_ns: int | None = None
    fail_values: dict = field(default_factory=dict)
    fail_inputs: dict = field(default_factory=dict)   # every driven input at the failing scan
    checked: int = 0
    done: bool = False
    pending: list = field(default_factory=list)     # deadlines of `within` triggers not yet met
    last_cond: bool = False
    event_kind: str | None = None     # logged: only records of this kind ("log", "fault", "write", ...)

    def describe(self) -> str:
        if self.kind == "logged":
            by = f" by {self.at_ns / 1e9:g}s" if self.at_ns else ""
            return f"logged{f' ({self.event_kind})' if self.event_kind else ''}{by}: {self.text}"
        if self.kind == "at":
            return f"at {self.at_ns / 1e9:g}s: {self.text}"
        if self.kind == "within":
            return f"within {self.within_ns / 1e6:g}ms after {self.after}: {self.text}"
        return f"{self.kind}: {self.text}"

    def fresh(self) -> "Expectation":
        """The same check, not yet run (a scenario object can be run again)."""
        return Expectation(self.kind, self.text, self.at_ns, self.within_ns, self.after, self.key,
                           event_kind=self.event_kind)


@dataclass
class Scenario:
    path: str
    name: str
    sources: list[str]
    program: str | None
    interval_ns: int | None
    duration_ns: int
    seed: int
    initial: dict
    inputs: list[dict]
    faults: list[dict]
    actions: list[dict]
    expects: list[Expectation]
    text: str = ""             # the file, for line numbers in later messages
    doc: dict = field(default_factory=dict)         # the file as TOML data (fuzz writes from it)
    iomap: IoMap | None = None


def entry_error(rep: _Reporter, table: str, i: int, key: str | None, message: str) -> None:
    """`file:line: table[i].key: message`, the line found under the i-th [[table]]."""
    head = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]")
    heads = [n for n, ln in enumerate(rep.lines) if head.match(ln)]
    line = heads[i] + 1 if i < len(heads) else rep.line_of(key or table, table)
    if key is not None and i < len(heads):
        end = heads[i + 1] if i + 1 < len(heads) else len(rep.lines)
        pat = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        line = next((n + 1 for n in range(heads[i], end) if pat.match(rep.lines[n])), line)
    label = f"{table}[{i}]" + (f".{key}" if key else "")
    rep.problems.append(f"{rep.path}:{line}: {label}: {message}")


def entry_duration(rep: _Reporter, table: str, i: int, key: str, value) -> int | None:
    if not isinstance(value, str):
        entry_error(rep, table, i, key, f"expected a duration such as \"100ms\", found {value!r}")
        return None
    try:
        return parse_duration_ns(value.split("#", 1)[-1])
    except LiteralError as e:
        entry_error(rep, table, i, key, str(e))
        return None


def load_scenario(path: str) -> Scenario:
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise ScenarioError([f"{path}: cannot read: {e.strerror}"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError([f"{path}: not valid TOML: {e}"]) from None
    rep = _Reporter(path, text)
    base = os.path.dirname(os.path.abspath(path))
    for k in doc:
        if k not in SECTIONS:
            rep.error(k, f"unknown section (known: {', '.join(sorted(SECTIONS))})", k)
    sc = doc.get("scenario")
    if not isinstance(sc, dict):
        rep.error("scenario", "missing: a [scenario] section with sources and duration is required")
        raise ScenarioError(rep.problems)
    for k in sc:
        if k not in SCENARIO_KEYS:
            rep.error(f"scenario.{k}", f"unknown key (known: {', '.join(SCENARIO_KEYS)})", "scenario")
    paths = source_paths(rep, "scenario.sources", sc.get("sources"), base, "scenario")
    duration = duration_ns(rep, "scenario.duration", sc.get("duration"), "scenario") if "duration" in sc else None
    if "duration" not in sc:
        rep.error("scenario.duration", "missing: how long to run, e.g. duration = \"60s\"", "scenario")
    interval = duration_ns(rep, "scenario.interval", sc["interval"], "scenario") if "interval" in sc else None
    seed = sc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        rep.error("scenario.seed", "a whole number (it seeds noise and dropped frames)", "scenario")
    if not isinstance(doc.get("initial", {}), dict):
        rep.error("initial", "write it as [initial] with \"Main.x\" = value lines", "initial")
    iomap = _load_iomap(rep, sc.get("io_map"), base) if "io_map" in sc else None
    inputs = [_input_entry(rep, i, x, base, iomap) for i, x in enumerate(_entries(rep, doc, "input"))]
    faults = [_fault_entry(rep, i, x, iomap) for i, x in enumerate(_entries(rep, doc, "fault"))]
    actions = [dict(x, _i=i) for i, x in enumerate(_entries(rep, doc, "action"))]
    for i, a in enumerate(actions):
        if "at" not in a:
            entry_error(rep, "action", i, None, "missing `at`: when the action happens")
        else:
            a["at_ns"] = entry_duration(rep, "action", i, "at", a["at"])
        if not any(k in a for k in ("write", "force", "release", "reset")):
            entry_error(rep, "action", i, None, "say what to do: write, force, release or reset")
    expects = [x for i, raw in enumerate(_entries(rep, doc, "expect")) if (x := _expect_entry(rep, i, raw))]
    if not expects and not rep.problems:
        rep.error("expect", "a scenario must check something: add [[expect]] entries", "expect")
    if rep.problems:
        raise ScenarioError(rep.problems)
    return Scenario(os.path.abspath(path), str(sc.get("name", os.path.basename(path))), paths, sc.get("program"),
                    interval, duration, seed, dict(doc.get("initial", {})), inputs, faults,
                    actions, expects, text, doc, iomap)


def _entries(rep: _Reporter, doc: dict, table: str) -> list[dict]:
    v = doc.get(table, [])
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        rep.error(table, f"write each one as [[{table}]]", table)
        return []
    return v


def _load_iomap(rep: _Reporter, value, base: str) -> IoMap | None:
    from .io.iomap import IoMapError, load_iomap
    if not isinstance(value, str):
        rep.error("scenario.io_map", "the I/O map file, e.g. io_map = \"../io_maps/site.toml\"", "scenario")
        return None
    full = os.path.normpath(os.path.join(base, value))
    if not os.path.isfile(full):
        rep.error("scenario.io_map", f"no such file: {value}", "scenario")
        return None
    try:
        return load_iomap(full)
    except IoMapError as e:
        rep.problems.extend(e.problems)
        return None


def _input_entry(rep: _Reporter, i: int, raw: dict, base: str, iomap: IoMap | None = None) -> dict:
    it = dict(raw, _i=i)
    kind = it.get("kind", "can_log" if "can_log" in it else "constant")
    it["kind"] = kind
    if kind not in TRAJECTORIES:
        entry_error(rep, "input", i, "kind", f"'{kind}' is not a trajectory ({', '.join(TRAJECTORIES)})")
        return it
    if kind == "can_log":
        _can_log_entry(rep, i, it, base, iomap)
        return it
    if not isinstance(it.get("tag"), str):
        entry_error(rep, "input", i, "tag", "missing: the tag this trajectory drives")
    for k in ("from", "to", "at", "period"):
        if k in it:
            it[k + "_ns"] = entry_duration(rep, "input", i, k, it[k])
    if kind == "step" and "at" not in it:
        entry_error(rep, "input", i, "at", "missing: when the step happens")
    if kind == "table":
        pts = it.get("points")
        if not isinstance(pts, list) or not pts or not all(isinstance(p, list) and len(p) == 2 for p in pts):
            entry_error(rep, "input", i, "points",
                        "a list of [time, value] pairs, e.g. [[\"0s\", 20.0], [\"5s\", 40.0]]")
        else:
            try:
                # by time only: two points at one time are a jump, in the order written
                it["points_ns"] = sorted(((parse_duration_ns(p[0]) if isinstance(p[0], str) else round(p[0] * 1e9),
                                           float(p[1])) for p in pts), key=lambda tv: tv[0])
            except (LiteralError, TypeError, ValueError) as e:
                entry_error(rep, "input", i, "points",
                            f"a time is a duration (\"1.5s\") or seconds, a value a number: {e}")
    if kind == "csv":
        it["file"] = os.path.normpath(os.path.join(base, str(it.get("file", ""))))
        if not os.path.isfile(it["file"]):
            entry_error(rep, "input", i, "file", f"no such file: {raw.get('file')}")
    return it


def _fault_entry(rep: _Reporter, i: int, raw: dict, iomap: IoMap | None) -> dict:
    f = dict(raw, _i=i)
    kind = f.get("kind")
    if kind not in FAULTS:
        entry_error(rep, "fault", i, "kind", f"'{kind}' is not a fault ({', '.join(FAULTS)})")
    for k in ("from", "to"):
        if k not in f:
            entry_error(rep, "fault", i, None, f"missing `{k}`: faults last from a time to a time")
        else:
            f[k + "_ns"] = entry_duration(rep, "fault", i, k, f[k])
    if kind == "comm_loss":
        dev = f.get("device")
        if not isinstance(dev, str):
            entry_error(rep, "fault", i, None, "missing `device`: the io_map device that goes silent")
        elif iomap is None:
            entry_error(rep, "fault", i, "device", "comm_loss needs the scenario's io_map (scenario.io_map)")
        elif dev not in iomap.devices:
            entry_error(rep, "fault", i, "device", f"no device '{dev}' in {os.path.basename(iomap.path)} "
                                                    f"(devices: {', '.join(sorted(iomap.devices)) or 'none'})")
    elif kind is not None and not isinstance(f.get("tag"), str):
        entry_error(rep, "fault", i, None, "missing `tag`: the input the fault acts on")
    if kind == "drop":
        p = f.get("probability", 1.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            entry_error(rep, "fault", i, "probability", "a number from 0.0 to 1.0")
    return f


def _expect_entry(rep: _Reporter, i: int, x: dict) -> Expectation | None:
    key = f"expect[{i}]"
    if "always" in x:
        return Expectation("always", str(x["always"]), key=key)
    if "never" in x:
        return Expectation("never", str(x["never"]), key=key)
    if "within" in x:
        if "after" not in x or "expect" not in x:
            entry_error(rep, "expect", i, None, "a `within` expectation needs `after` and `expect`")
            return None
        within = entry_duration(rep, "expect", i, "within", x["within"]) or 0
        return Expectation("within", str(x["expect"]), within_ns=within, after=str(x["after"]), key=key)
    if "logged" in x:
        # an event-log record whose text contains this, written by `by` (default: the end)
        by = entry_duration(rep, "expect", i, "by", x["by"]) if "by" in x else 0
        want = x["logged"]
        if isinstance(want, dict):           # fields the record must have: { name = "...", what = "active" }
            import json
            want = json.dumps(want, sort_keys=True, ensure_ascii=False)
        return Expectation("logged", str(want), at_ns=by or 0, key=key,
                           event_kind=str(x["kind"]) if "kind" in x else None)
    if "at" in x:
        if "expect" not in x:
            entry_error(rep, "expect", i, None, "an `at` expectation needs `expect`")
            return None
        return Expectation("at", str(x["expect"]), at_ns=entry_duration(rep, "expect", i, "at", x["at"]) or 0, key=key)
    entry_error(rep, "expect", i, None, "say when: at, within/after, always, never, or logged")
    return None


# ------------------------------------------------------------------ trajectories
def _trajectory(it: dict, seed: int):
    kind = it.get("kind", "constant")
    if kind == "constant":
        v = float(it.get("value", 0.0))
        return lambda t: v
    if kind == "step":
        at, before, after = it["at_ns"], float(it.get("before", 0.0)), float(it.get("after", it.get("value", 1.0)))
        return lambda t: after if t >= at else before
    if kind == "ramp":
        t0, t1 = it.get("from_ns", 0), it.get("to_ns")
        v0 = float(it.get("start", 0.0))
        if "rate" in it:                          # per second, until `to` if given
            rate = float(it["rate"])
            end = v0 + rate * (t1 - t0) / 1e9 if t1 is not None else None
            return lambda t: v0 if t < t0 else (end if t1 is not None and t >= t1 else v0 + rate * (t - t0) / 1e9)
        v1 = float(it.get("end", v0))
        span = max(1, (t1 or t0) - t0)
        return lambda t: v0 if t <= t0 else (v1 if t >= (t1 or t0) else v0 + (v1 - v0) * (t - t0) / span)
    if kind == "table":
        return _Table(it["points_ns"])
    if kind == "sine":
        amp, off = float(it.get("amplitude", 1.0)), float(it.get("offset", 0.0))
        period = it.get("period_ns", 1_000_000_000)
        return lambda t: off + amp * math.sin(2 * math.pi * t / period)
    if kind == "noise":
        rng = random.Random(seed * 1_000_003 + it["_i"])
        mean, sigma = float(it.get("mean", 0.0)), float(it.get("sigma", 1.0))
        return lambda t: rng.gauss(mean, sigma)
    if kind == "csv":
        with open(it["file"], newline="") as f:
            rows = list(csv.DictReader(f))
        tcol, vcol = it.get("time_column", "t"), it.get("column", "value")
        return _Table(sorted(((round(float(r[tcol]) * 1e9), float(r[vcol])) for r in rows), key=lambda tv: tv[0]))
    raise AssertionError(kind)


class _Table:
    """Linear between points; at a time given twice the later point holds,
    so a pair of points at one time is a jump there."""
    __slots__ = ("times", "values", "i")

    def __init__(self, pts):
        self.times = [p[0] for p in pts]
        self.values = [p[1] for p in pts]
        self.i = 0

    def __call__(self, t):
        times, values = self.times, self.values
        if not times:
            return 0.0
        # scans ask for increasing times: start the search where the last one ended
        i = self.i
        if not (i < len(times) and times[i] <= t and (i + 1 == len(times) or times[i + 1] > t)):
            i = bisect.bisect_right(times, t) - 1
            if i < 0:
                return values[0]
            self.i = i
        if i + 1 == len(times):
            return values[i]
        ta, tb = times[i], times[i + 1]
        va, vb = values[i], values[i + 1]
        return va + (vb - va) * (t - ta) / (tb - ta) if va != vb else va


# ------------------------------------------------------------------ running
@dataclass
class ScenarioResult:
    scenario: Scenario
    expects: list[Expectation]
    scans: int
    fault: object = None
    trace: list | None = None
    trace_tags: list[str] = field(default_factory=list)
    trace_types: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(x.ok for x in self.expects) and self.fault is None


def run_scenario(sc: Scenario, *, trace_tags: list[str] | None = None, watchdog_s: float = 10.0,
                 coverage: list | None = None, backend: str | None = None) -> ScenarioResult:
    """coverage: a list; the program is compiled with coverage counters and
    appended to it, for the caller to read its hits (runtime/coverage.py).
    backend: runtime/backend.py (None: the default, auto)."""
    from .backend import BackendError, select
    result = compile_project(read_sources(sc.sources), coverage=coverage is not None)
    if not result.ok:
        raise ScenarioError([render([d for d in result.diagnostics if d.is_error], result.sources, "short")])
    if coverage is not None:
        coverage.append(result.program)
    try:
        program = select(result.program, backend)
    except BackendError as e:
        raise ScenarioError([f"{sc.path}: {e}"]) from None
    try:
        eng = Engine(program, program_name=sc.program, interval_ns=sc.interval_ns, watchdog_s=watchdog_s)
    except EngineError as e:
        raise ScenarioError([f"{sc.path}: {e}"]) from None
    try:
        return _run(sc, eng, trace_tags or [])
    finally:
        eng.close()


def _run(sc: Scenario, eng: Engine, trace_tags: list[str], *, stop_at_failure: bool = False,
         end_checks: bool = True) -> ScenarioResult:
    """Run `sc` on a fresh engine. The fuzzer stops at the first failure and
    skips the end-of-run checks (a deadline the run ended before is no
    violation there)."""
    rep = _Reporter(sc.path, sc.text)
    for path, value in sc.initial.items():
        try:
            eng.set_text(path, str(value).upper() if isinstance(value, bool) else str(value))
        except tags.TagError as e:
            rep.error(f"initial.{path}", str(e), "initial")
    if sc.iomap is not None:
        from .io.iomap import IoMapError, bind_iomap
        try:
            bind_iomap(sc.iomap, eng)
        except IoMapError as e:
            rep.problems.extend(e.problems)
    drivers = _drivers(sc, eng, rep)
    expects = sc.expects
    events: list[tuple[int, str, dict]] = []
    eng.events = lambda kind, data: events.append((eng.ctx.now_ns, kind, data))
    # the alarm table the live runtime keeps: its transitions are event-log records too
    from .alarms import AlarmError, alarm_set
    try:
        alarms = alarm_set(eng, [], events=eng.events) if any(x.kind == "logged" for x in sc.expects) else None
    except AlarmError as e:
        rep.error("sources", f"alarm pragmas: {e}")
        alarms = None
    for x in expects:
        if x.kind == "logged":
            continue
        try:
            x.expr = compile_expr(x.text, eng, f"{x.key}")
            if x.after is not None:
                x.cond = compile_expr(x.after, eng, f"{x.key}.after")
        except ExpectError as e:
            rep.error(x.key, str(e), "expect")
    traced = []
    for p in trace_tags:
        try:
            traced.append((p, eng.tag(p)))
        except tags.TagError as e:
            rep.error("--trace", str(e))
    if rep.problems:
        raise ScenarioError(rep.problems)
    actions = sorted(sc.actions, key=lambda a: a["at_ns"])
    next_action = 0
    period = eng.base_period_ns
    n_scans = sc.duration_ns // period + 1
    trace = [] if traced else None
    fault = None
    feeds = [d.feeder(eng.stage_input) for d in drivers]
    checks = [_checker(x, eng) for x in expects if x.kind != "logged"]
    read = reader([tag for _, tag in traced]) if traced else None
    scan = eng.scan
    next_at = actions[0]["at_ns"] if actions else None
    k = -1
    for k in range(n_scans):
        t = k * period
        for feed in feeds:
            feed(t)
        if next_at is not None and next_at <= t:
            while next_action < len(actions) and actions[next_action]["at_ns"] <= t:
                _act(eng, actions[next_action])
                next_action += 1
            next_at = actions[next_action]["at_ns"] if next_action < len(actions) else None
        faults_now = scan(t)
        if alarms is not None:
            alarms.after_scan(eng.scan_count, t)
        if read is not None:
            trace.append((t, read()))
        failed = False
        for check in checks:
            if check(t):
                failed = True
        if failed:
            inputs = {p: tags.to_json_value(pt.tag.get(), pt.tag.type) for p, pt in eng.input_points.items()}
            for x in expects:
                if not x.ok and x.fail_t_ns == t and not x.fail_inputs:
                    x.fail_inputs = inputs
        if faults_now:
            fault = faults_now[0]
            break
        if failed and stop_at_failure:
            break
    for x in expects:
        if x.kind in ("always", "never"):
            x.checked = k + 1 if x.ok else x.fail_scan
    for x in expects:
        if x.kind == "logged":
            _check_logged(x, events)
    if end_checks:
        for x in expects:
            if x.kind == "at" and not x.done:
                x.ok = False
                x.fail_values = {"reason": "the scenario ended before this time"}
            if x.pending and x.ok:
                x.ok = False
                x.fail_t_ns = x.pending[0]
                x.fail_values = {"reason": "the scenario ended before the deadline"}
    return ScenarioResult(sc, expects, eng.scan_count, fault, trace, [p for p, _ in traced],
                          [tag.type for _, tag in traced])


# ------------------------------------------------------------------ inputs on their way in
class _Window:
    """One fault on one input, with the state it keeps while active."""
    __slots__ = ("kind", "t0", "t1", "value", "rate", "p", "rng", "held")

    def __init__(self, f: dict, rng: random.Random):
        self.kind = f["kind"]
        self.t0, self.t1 = f["from_ns"], f["to_ns"]
        self.value = float(f.get("value", 0.0))
        self.rate = float(f.get("rate", 0.0))
        self.p = float(f.get("probability", 1.0))
        self.rng = rng
        self.held = None


class _Driver:
    """Feeds one input: its trajectory, through its faults, staged with a
    quality and a source timestamp for the next scan."""
    __slots__ = ("path", "tag", "conv", "traj", "faults", "range", "last", "last_ts")

    def __init__(self, path: str, tag, traj, valid_range):
        self.path = path
        self.tag = tag
        self.conv = _converter(tag.type)
        self.traj = traj
        self.faults: list[_Window] = []
        self.range = valid_range
        self.last = None            # the last value staged GOOD, and when
        self.last_ts = None

    def add_fault(self, path: str, w: _Window) -> None:
        self.faults.append(w)

    def feeder(self, stage):
        """feed(t) for this run; without faults or a range, the short way."""
        if self.faults or self.range is not None:
            return lambda t: self.feed(t, stage)
        path, traj, conv = self.path, self.traj, self.conv

        def plain(t):
            stage(path, conv(traj(t)), GOOD, t)
        return plain

    def feed(self, t: int, stage) -> None:
        v = self.traj(t)
        q = GOOD
        for f in self.faults:
            if not f.t0 <= t < f.t1:
                continue
            kind = f.kind
            if kind == "stuck":
                if f.held is None:
                    f.held = v if self.last is None else self.last
                v = f.held
            elif kind == "offset":
                v = v + f.value
            elif kind == "drift":
                v = v + f.rate * (t - f.t0) / 1e9
            elif kind == "drop":
                if f.rng.random() < f.p:
                    return              # this update is lost: value and timestamp stay old
            elif kind == "comm_loss":
                return
            elif q == GOOD:
                q = STALE if kind == "stale" else BAD
        if q == GOOD:
            v = self.conv(v)
            r = self.range
            if r is None or r[0] <= v <= r[1]:
                stage(self.path, v, GOOD, t)
                self.last, self.last_ts = v, t
                return
            q = BAD                     # as the live engine does with a value outside the point's range
        # the value is held; a stale point's timestamp is its last fresh update
        stage(self.path, None, q, (self.last_ts or 0) if q == STALE else t)


def _converter(typ):
    from plc_lang.types import BoolType, IntType, RealType, strip_subrange
    from plc_lang.values import f32, wrap
    ts = strip_subrange(typ)
    if isinstance(ts, BoolType):
        return bool
    if isinstance(ts, IntType):
        bits, signed = ts.bits, ts.signed
        return lambda v: wrap(int(round(v)), bits, signed)
    if isinstance(ts, RealType):
        return (lambda v: f32(float(v))) if ts.bits == 32 else float
    return lambda v: v


def _drivers(sc: Scenario, eng: Engine, rep: _Reporter) -> list:
    """The feeders of a run (each has feed(t, stage)), with the faults attached."""
    by_path: dict = {}
    for it in sc.inputs:
        if it["kind"] == "can_log":
            d = _log_driver(it, sc, eng, rep)
            for path in d.paths if d is not None else ():
                by_path[path] = d
            continue
        try:
            path = eng.tag(it["tag"]).path
            if path not in eng.input_points:
                eng.declare_input(path)
            pt = eng.input_points[path]
            by_path[path] = _Driver(path, pt.tag, _trajectory(it, sc.seed), pt.range)
        except (tags.TagError, KeyError, ValueError, LiteralError) as e:
            entry_error(rep, "input", it["_i"], None, str(e))
    for path, pt in eng.input_points.items():
        if path not in by_path:         # a quiet field: the mapped input keeps its initial value, GOOD
            v0 = pt.tag.get()
            by_path[path] = d = _Driver(path, pt.tag, lambda t, v0=v0: v0, pt.range)
            d.conv = lambda v: v
    rng = random.Random(sc.seed)
    for f in sorted(sc.faults, key=lambda f: f["from_ns"]):
        if f["kind"] == "comm_loss":
            paths = [p.var for p in sc.iomap.points_of(f["device"]) if p.direction == "input"]
        else:
            try:
                paths = [eng.tag(f["tag"]).path]
            except tags.TagError as e:
                entry_error(rep, "fault", f["_i"], "tag", str(e))
                continue
            if paths[0] not in by_path:
                entry_error(rep, "fault", f["_i"], "tag", f"'{paths[0]}' is not an input: no [[input]] drives it"
                                                          + (" and the io_map does not bind it" if sc.iomap else ""))
                continue
        for p in paths:
            if p in by_path:
                by_path[p].add_fault(p, _Window(f, rng))
    feeders = []
    for d in by_path.values():
        if all(d is not x for x in feeders):
            feeders.append(d)
    return feeders


# ------------------------------------------------------------------ CAN captures as inputs
def _can_log_entry(rep: _Reporter, i: int, it: dict, base: str, iomap: IoMap | None) -> None:
    """A capture replayed as the bus, through a DBC:

        [[input]]
        can_log = "capture.log"         # candump -L / -ta, or Vector ASC
        dbc = "bms_can.dbc"             # and which signal drives which variable ...
        signals = { "BMS_Measurements_356.BatteryTemperature" = "Main.tBat" }
        # device = "bms"                # ... or an io_map CAN device: its DBC and input points
        start = "0s"                    # scenario time of the log's first frame
        speed = 1.0                     # 2.0: twice as fast as recorded
        timeout = "2s"                  # with `signals`: stale after this long without a frame

    Values, quality and timestamps come as the live CAN driver gives them;
    faults act on each frame's updates, `stale`/`bad` for their whole window.
    """
    from .io.can_codec import CanCodec, CanConfigError
    from .io.config import Point
    known = {"can_log", "kind", "dbc", "signals", "device", "start", "speed", "timeout", "_i"}
    for k in it:
        if k not in known:
            entry_error(rep, "input", i, k,
                        f"unknown key for a can_log input (known: {', '.join(sorted(known - {'_i'}))})")
    dev_log = None
    if "can_log" not in it and "device" in it and iomap is not None:
        d = iomap.devices.get(it["device"])
        dev_log = d.log if d is not None and d.transport == "can" else None
    if dev_log is not None:
        it["file"] = dev_log            # the device's own capture (its `log` key)
    elif "can_log" not in it:
        entry_error(rep, "input", i, "can_log", "missing: the capture to replay (can_log = \"capture.log\"), or "
                                                "device = an io_map CAN device with log = \"capture.log\"")
    else:
        it["file"] = os.path.normpath(os.path.join(base, str(it.get("can_log", ""))))
        if not isinstance(it.get("can_log"), str) or not os.path.isfile(it["file"]):
            entry_error(rep, "input", i, "can_log", f"no such file: {it.get('can_log')}")
    it["start_ns"] = entry_duration(rep, "input", i, "start", it["start"]) if "start" in it else 0
    it["timeout_ns"] = entry_duration(rep, "input", i, "timeout", it["timeout"]) if "timeout" in it else None
    speed = it.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
        entry_error(rep, "input", i, "speed", "a number greater than 0 (1.0: as recorded)")
    if "device" in it:
        dev = iomap.devices.get(it["device"]) if iomap is not None else None
        if iomap is None:
            entry_error(rep, "input", i, "device", "naming a device needs the scenario's io_map (scenario.io_map)")
        elif dev is None or dev.transport != "can":
            cans = sorted(n for n, d in iomap.devices.items() if d.transport == "can")
            entry_error(rep, "input", i, "device", f"no CAN device '{it['device']}' in {os.path.basename(iomap.path)} "
                                                   f"(CAN devices: {', '.join(cans) or 'none'})")
        else:
            it["_dbc"] = dev.dbc
            it["_points"] = [p for p in iomap.points_of(dev.name) if p.direction == "input"]
        return
    sig = it.get("signals")
    if not isinstance(it.get("dbc"), str) or not isinstance(sig, dict) or not sig \
            or not all(isinstance(k, str) and "." in k and isinstance(v, str) for k, v in sig.items()):
        entry_error(rep, "input", i, None, "a can_log input needs dbc = \"FILE.dbc\" and signals = "
                                           "{ \"Message.Signal\" = \"Main.var\" } (or device = an io_map CAN device)")
        return
    it["_dbc"] = os.path.normpath(os.path.join(base, it["dbc"]))
    if not os.path.isfile(it["_dbc"]):
        entry_error(rep, "input", i, "dbc", f"no such file: {it['dbc']}")
        return
    it["_points"] = [Point(var, "can_log", "input", message=k.split(".", 1)[0], signal=k.split(".", 1)[1])
                     for k, var in sig.items()]
    try:
        CanCodec(it["_dbc"], it["_points"])
    except CanConfigError as e:
        entry_error(rep, "input", i, "signals", str(e))


def _log_driver(it: dict, sc: Scenario, eng: Engine, rep: _Reporter):
    from .io.can_codec import CanCodec
    from .io.can_log import CanLogError, LogReplay
    points = []
    for p in it["_points"]:
        try:
            path = eng.tag(p.var).path
            if path not in eng.input_points:
                eng.declare_input(path, it["timeout_ns"])
        except tags.TagError as e:
            entry_error(rep, "input", it["_i"], "signals", str(e))
            continue
        points.append(dataclasses.replace(p, var=path))
    try:
        replay = LogReplay(it["file"], CanCodec(it["_dbc"], points), it["start_ns"], float(it.get("speed", 1.0)))
    except CanLogError as e:
        rep.problems.append(str(e))
        return None
    return _LogDriver(replay, eng, [p.var for p in points])


class _LogDriver:
    """Feeds the variables a CAN capture carries: each scan, the frames due by
    then go in as the live CAN driver gives them (engineering values, frame
    timestamps, the engine's conversions, ranges and timeouts), through the
    faults of their variables."""

    def __init__(self, replay, eng: Engine, paths: list[str]):
        self.replay = replay
        self.publish = eng.input_stage.publish
        self.paths = paths
        self.faults: dict[str, list[_Window]] = {}
        self.last: dict[str, tuple] = {}          # path -> (value, ts) of the last update let through

    def add_fault(self, path: str, w: _Window) -> None:
        self.faults.setdefault(path, []).append(w)

    def feeder(self, stage):
        return lambda t: self.feed(t, stage)

    def feed(self, t: int, stage) -> None:
        from .io.can_log import CanLogError
        from .io.image import Update
        try:
            updates = self.replay.updates_until(t)
        except CanLogError as e:
            raise ScenarioError([str(e)]) from None
        out = []
        for u in updates:
            for f in self.faults.get(u.path, ()):
                if u is None or not f.t0 <= u.ts_ns < f.t1:
                    continue
                kind = f.kind
                if kind in ("comm_loss", "stale", "bad") or kind == "drop" and f.rng.random() < f.p:
                    u = None
                elif u.value is None:
                    continue
                elif kind == "stuck":
                    if f.held is None:
                        f.held = self.last.get(u.path, (u.value,))[0]
                    u = Update(u.path, f.held, u.quality, u.ts_ns)
                elif kind == "offset":
                    u = Update(u.path, u.value + f.value, u.quality, u.ts_ns)
                elif kind == "drift":
                    u = Update(u.path, u.value + f.rate * (u.ts_ns - f.t0) / 1e9, u.quality, u.ts_ns)
            if u is not None:
                out.append(u)
                if u.value is not None:
                    self.last[u.path] = (u.value, u.ts_ns)
        if out:
            self.publish(out)
        # stale and bad hold from `from` to `to` whether frames come or not
        for path, ws in self.faults.items():
            for f in ws:
                if f.kind in ("stale", "bad") and f.t0 <= t < f.t1:
                    stage(path, None, STALE if f.kind == "stale" else BAD,
                          self.last.get(path, (None, 0))[1] if f.kind == "stale" else t)
                    break


# ------------------------------------------------------------------ actions and checks
def _act(eng: Engine, a: dict) -> None:
    who = "scenario"
    if "write" in a:
        eng.queue_write(a["write"], str(a.get("value", "")), who)
    elif "force" in a:
        eng.force(a["force"], str(a.get("value", "")), who)
    elif "release" in a:
        eng.release(a["release"], who)
    elif "reset" in a:
        eng.reset_task(a["reset"], str(a.get("mode", "warm")), who)


def _fail(x: Expectation, t: int, scan: int) -> bool:
    if not x.ok:
        return False
    x.ok = False
    x.fail_t_ns = t
    x.fail_scan = scan
    x.fail_values = x.expr.values()
    if x.cond is not None:
        x.fail_values.update(x.cond.values())
    return True


def _record_matches(want: str, data: dict) -> bool:
    """`want` is text to find in the record, or (a JSON object) fields it must have."""
    import json
    if want.startswith("{"):
        try:
            fields = json.loads(want)
        except ValueError:
            fields = None
        if isinstance(fields, dict):
            return all(data.get(k) == v for k, v in fields.items())
    return want in json.dumps(data, sort_keys=True, ensure_ascii=False)


def _check_logged(x: Expectation, events: list) -> None:
    """The run's event-log records (what the live runtime's event log would
    hold: log-attribute variables, faults, writes, forces, resets)."""
    import json
    seen = 0
    for t, kind, data in events:
        if x.event_kind is not None and kind != x.event_kind:
            continue
        seen += 1
        if x.at_ns and t > x.at_ns:
            break
        if _record_matches(x.text, data):
            x.checked, x.ok, x.done = 1, True, True
            return
    x.ok = False
    x.fail_t_ns = x.at_ns or None
    x.fail_values = {"reason": f"no such record among {seen} {x.event_kind or ''} record(s)".replace("  ", " ")}


def _checker(x: Expectation, eng: Engine):
    """check(t) -> True when the expectation has just failed (once: a failed
    always/never is not checked again)."""
    expr = x.expr.fn
    if x.kind == "always":
        def always(t):
            return x.ok and not expr() and _fail(x, t, eng.scan_count)
        return always
    if x.kind == "never":
        def never(t):
            return x.ok and bool(expr()) and _fail(x, t, eng.scan_count)
        return never
    if x.kind == "at":
        def at(t):
            if x.done or t < x.at_ns:
                return False
            x.done = True
            x.checked += 1
            return not expr() and _fail(x, t, eng.scan_count)
        return at
    cond = x.cond.fn

    def within(t):
        # each rising edge of `after` starts a deadline that `expect` must meet
        c = bool(cond())
        if c and not x.last_cond:
            x.pending.append(t + x.within_ns)
        x.last_cond = c
        if x.pending:
            if expr():
                x.checked += len(x.pending)
                x.pending.clear()
            elif t > x.pending[0]:
                x.pending.pop(0)
                return _fail(x, t, eng.scan_count)
        return False
    return within
