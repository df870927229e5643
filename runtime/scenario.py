"""Scenario files: inputs over time, injected faults, operator actions and
expectations, run on the virtual clock (`gridplc sim --scenario FILE`).

    [scenario]
    name = "over-temperature derate"
    sources = ["../site.st"]        # relative to this file
    duration = "60s"
    # interval = "100ms"; program = "Main"   (only without a CONFIGURATION)
    seed = 1

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
    kind = "stuck"                   # stuck | offset | drift | drop
    from = "20s"
    to = "25s"

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

Everything is deterministic: noise and dropped frames come from seeded
generators advanced once per scan, and time is the virtual clock.
"""
from __future__ import annotations

import csv
import math
import os
import random
import tomllib
from dataclasses import dataclass, field

from plc_lang.driver import compile_project, read_sources
from plc_lang.diagnostics import render
from plc_lang.literals import LiteralError, parse_duration_ns

from . import tags
from .engine import Engine, EngineError
from .expect import CompiledExpr, ExpectError, compile_expr
from .site import _Reporter, duration_ns, source_paths


class ScenarioError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


TRAJECTORIES = ("constant", "step", "ramp", "table", "sine", "noise", "csv")
FAULTS = ("stuck", "offset", "drift", "drop")


@dataclass
class Expectation:
    kind: str                  # at, within, always, never
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
    checked: int = 0
    done: bool = False
    pending: list = field(default_factory=list)     # deadlines of `within` triggers not yet met
    last_cond: bool = False

    def describe(self) -> str:
        if self.kind == "at":
            return f"at {self.at_ns / 1e9:g}s: {self.text}"
        if self.kind == "within":
            return f"within {self.within_ns / 1e6:g}ms after {self.after}: {self.text}"
        return f"{self.kind}: {self.text}"


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
    known = {"scenario", "initial", "input", "fault", "action", "expect"}
    for k in doc:
        if k not in known:
            rep.error(k, f"unknown section (known: {', '.join(sorted(known))})", k)
    sc = doc.get("scenario")
    if not isinstance(sc, dict):
        rep.error("scenario", "missing: a [scenario] section with sources and duration is required")
        raise ScenarioError(rep.problems)
    for k in sc:
        if k not in ("name", "sources", "duration", "interval", "program", "seed"):
            rep.error(f"scenario.{k}", "unknown key (known: duration, interval, name, program, seed, sources)", "scenario")
    paths = source_paths(rep, "scenario.sources", sc.get("sources"), base, "scenario")
    duration = duration_ns(rep, "scenario.duration", sc.get("duration"), "scenario") if "duration" in sc else None
    if "duration" not in sc:
        rep.error("scenario.duration", "missing: how long to run, e.g. duration = \"60s\"", "scenario")
    interval = duration_ns(rep, "scenario.interval", sc["interval"], "scenario") if "interval" in sc else None
    inputs = [dict(x, _i=i) for i, x in enumerate(doc.get("input", []))]
    faults = [dict(x, _i=i) for i, x in enumerate(doc.get("fault", []))]
    actions = [dict(x, _i=i) for i, x in enumerate(doc.get("action", []))]
    for i, it in enumerate(inputs):
        kind = it.get("kind", "constant")
        if kind not in TRAJECTORIES:
            rep.error(f"input[{i}].kind", f"'{kind}' is not a trajectory ({', '.join(TRAJECTORIES)})", "input")
        if not isinstance(it.get("tag"), str):
            rep.error(f"input[{i}].tag", "missing: the tag this trajectory drives", "input")
        for k in ("from", "to", "at", "period"):
            if k in it:
                it[k + "_ns"] = duration_ns(rep, f"input[{i}].{k}", it[k], "input")
        if kind == "csv":
            it["file"] = os.path.normpath(os.path.join(base, str(it.get("file", ""))))
            if not os.path.isfile(it["file"]):
                rep.error(f"input[{i}].file", f"no such file: {it.get('file')}", "input")
    for i, f in enumerate(faults):
        if f.get("kind") not in FAULTS:
            rep.error(f"fault[{i}].kind", f"'{f.get('kind')}' is not a fault ({', '.join(FAULTS)})", "fault")
        for k in ("from", "to"):
            if k not in f:
                rep.error(f"fault[{i}].{k}", "missing: faults last from a time to a time", "fault")
            else:
                f[k + "_ns"] = duration_ns(rep, f"fault[{i}].{k}", f[k], "fault")
    for i, a in enumerate(actions):
        if "at" not in a:
            rep.error(f"action[{i}].at", "missing: when the action happens", "action")
        else:
            a["at_ns"] = duration_ns(rep, f"action[{i}].at", a["at"], "action")
        if not any(k in a for k in ("write", "force", "release", "reset")):
            rep.error(f"action[{i}]", "say what to do: write, force, release or reset", "action")
    expects = []
    for i, x in enumerate(doc.get("expect", [])):
        key = f"expect[{i}]"
        if "always" in x:
            expects.append(Expectation("always", str(x["always"]), key=key))
        elif "never" in x:
            expects.append(Expectation("never", str(x["never"]), key=key))
        elif "within" in x:
            if "after" not in x or "expect" not in x:
                rep.error(key, "a `within` expectation needs `after` and `expect`", "expect")
                continue
            expects.append(Expectation("within", str(x["expect"]), within_ns=duration_ns(rep, f"{key}.within", x["within"],
                                                                                   "expect") or 0,
                                       after=str(x["after"]), key=key))
        elif "at" in x:
            if "expect" not in x:
                rep.error(key, "an `at` expectation needs `expect`", "expect")
                continue
            expects.append(Expectation("at", str(x["expect"]), at_ns=duration_ns(rep, f"{key}.at", x["at"], "expect") or 0,
                                       key=key))
        else:
            rep.error(key, "say when: at, within/after, always or never", "expect")
    if not expects:
        rep.error("expect", "a scenario must check something: add [[expect]] entries", "expect")
    if rep.problems:
        raise ScenarioError(rep.problems)
    return Scenario(os.path.abspath(path), str(sc.get("name", os.path.basename(path))), paths, sc.get("program"),
                    interval, duration, int(sc.get("seed", 0)), dict(doc.get("initial", {})), inputs, faults,
                    actions, expects)


# ------------------------------------------------------------------ trajectories
def _trajectory(it: dict, seed: int):
    kind = it.get("kind", "constant")
    if kind == "constant":
        v = float(it.get("value", 0.0))
        return lambda t: v
    if kind == "step":
        at, before, after = it["at_ns"], it.get("before", 0.0), it.get("after", it.get("value", 1.0))
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
        pts = sorted((parse_duration_ns(str(p[0])) if isinstance(p[0], str) else int(p[0] * 1e9), float(p[1]))
                     for p in it.get("points", []))
        return lambda t: _interp(pts, t)
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
        pts = sorted((int(float(r[tcol]) * 1e9), float(r[vcol])) for r in rows)
        return lambda t: _interp(pts, t)
    raise AssertionError(kind)


def _interp(pts, t):
    if not pts:
        return 0.0
    if t <= pts[0][0]:
        return pts[0][1]
    for (ta, va), (tb, vb) in zip(pts, pts[1:]):
        if t <= tb:
            return va + (vb - va) * (t - ta) / (tb - ta) if tb > ta else vb
    return pts[-1][1]


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


def run_scenario(sc: Scenario, *, trace_tags: list[str] | None = None, watchdog_s: float = 10.0) -> ScenarioResult:
    result = compile_project(read_sources(sc.sources))
    if not result.ok:
        raise ScenarioError([render([d for d in result.diagnostics if d.is_error], result.sources, "short")])
    try:
        eng = Engine(result.program, program_name=sc.program, interval_ns=sc.interval_ns, watchdog_s=watchdog_s)
    except EngineError as e:
        raise ScenarioError([f"{sc.path}: {e}"]) from None
    try:
        return _run(sc, eng, trace_tags or [])
    finally:
        eng.close()


def _run(sc: Scenario, eng: Engine, trace_tags: list[str]) -> ScenarioResult:
    rep = _Reporter(sc.path, open(sc.path, encoding="utf-8").read())
    for path, value in sc.initial.items():
        try:
            eng.set_text(path, str(value).upper() if isinstance(value, bool) else str(value))
        except tags.TagError as e:
            rep.error(f"initial.{path}", str(e), "initial")
    drivers = []
    for it in sc.inputs:
        try:
            eng.declare_input(it["tag"])
            drivers.append((it["tag"], eng.tag(it["tag"]).type, _trajectory(it, sc.seed), it))
        except (tags.TagError, KeyError, ValueError, LiteralError) as e:
            rep.error(f"input[{it['_i']}]", str(e), "input")
    for x in sc.expects:
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
    faults = sorted(sc.faults, key=lambda f: f["from_ns"])
    fault_rng = random.Random(sc.seed)
    held: dict[str, object] = {}
    actions = sorted(sc.actions, key=lambda a: a["at_ns"])
    next_action = 0
    period = eng.base_period_ns
    n_scans = sc.duration_ns // period + 1
    trace = [] if traced else None
    fault = None
    for k in range(n_scans):
        t = k * period
        # inputs, with faults applied on their way in
        for path, typ, traj, it in drivers:
            v = traj(t)
            for f in faults:
                if f["tag"] != path or not f["from_ns"] <= t < f["to_ns"]:
                    continue
                kind = f["kind"]
                if kind == "stuck":
                    v = held.setdefault((path, f["_i"]), eng.input_image.get(path, v))
                elif kind == "offset":
                    v = v + float(f.get("value", 0.0))
                elif kind == "drift":
                    v = v + float(f.get("rate", 0.0)) * (t - f["from_ns"]) / 1e9
                elif kind == "drop" and fault_rng.random() < float(f.get("probability", 1.0)):
                    v = eng.input_image.get(path, v)
            eng.input_image[path] = tags.coerce_for_store(_as(v, typ), typ)
        while next_action < len(actions) and actions[next_action]["at_ns"] <= t:
            _act(eng, actions[next_action])
            next_action += 1
        faults_now = eng.scan(t)
        if trace is not None:
            trace.append((t, [tag.get() for _, tag in traced]))
        for x in sc.expects:
            _check(x, t, eng.scan_count)
        if faults_now:
            fault = faults_now[0]
            break
    for x in sc.expects:
        if x.kind == "at" and not x.done:
            x.ok = False
            x.fail_values = {"reason": "the scenario ended before this time"}
        if x.pending and x.ok:
            x.ok = False
            x.fail_t_ns = x.pending[0]
            x.fail_values = {"reason": "the scenario ended before the deadline"}
    return ScenarioResult(sc, sc.expects, eng.scan_count, fault, trace, [p for p, _ in traced],
                          [tag.type for _, tag in traced])


def _as(v, typ):
    from plc_lang.types import BoolType, IntType, strip_subrange
    ts = strip_subrange(typ)
    if isinstance(ts, BoolType):
        return bool(v)
    if isinstance(ts, IntType):
        return int(round(v))
    return v


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


def _fail(x: Expectation, t: int, scan: int) -> None:
    if x.ok:
        x.ok = False
        x.fail_t_ns = t
        x.fail_scan = scan
        x.fail_values = x.expr.values()
        if x.cond is not None:
            x.fail_values.update(x.cond.values())


def _check(x: Expectation, t: int, scan: int) -> None:
    if x.kind == "at":
        if not x.done and t >= x.at_ns:
            x.done = True
            x.checked += 1
            if not x.expr():
                _fail(x, t, scan)
        return
    if x.kind == "always":
        x.checked += 1
        if not x.expr():
            _fail(x, t, scan)
        return
    if x.kind == "never":
        x.checked += 1
        if x.expr():
            _fail(x, t, scan)
        return
    # within: each rising edge of `after` starts a deadline that `expect` must meet
    c = bool(x.cond())
    if c and not x.last_cond:
        x.pending.append(t + x.within_ns)
    x.last_cond = c
    if x.pending:
        if x.expr():
            x.checked += len(x.pending)
            x.pending.clear()
        elif t > x.pending[0]:
            x.pending.pop(0)
            _fail(x, t, scan)
