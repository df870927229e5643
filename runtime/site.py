"""The deployment file (`gridplc run SITE.toml`): sources, tasks, state, safe values.

    [site]
    name = "demo"
    sources = ["../programs/examples/battery_guard.st"]   # relative to this file
    # program = "Main"        # when the sources have no CONFIGURATION
    # interval = "100ms"      # likewise
    state_dir = "state"       # retain file, event log, control port file
    io_maps = ["../io_maps/site.toml"]   # field I/O (runtime/io/iomap.py)

    [retain]                  # optional
    period = "1s"             # at most one write per period (and at shutdown)

    [control]
    listen = "127.0.0.1:0"    # the local control socket (0 = any free port)

    [io]                      # optional
    process = true            # the drivers in a process of their own (default); false: a thread

    [tasks.Fast]
    watchdog = "50ms"         # per task; default [site] watchdog or 1s

    [[inputs]]
    tag = "Main.request"      # values come from the field (or forcing)

    [[outputs]]
    tag = "Main.setpoint"
    safe = "0.0"              # what goes out when the task faults (default: initial value)

Every problem is reported with the file, the line and the key, all at once.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field

from plc_lang.literals import LiteralError, parse_duration_ns


class SiteError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class IoPoint:
    tag: str
    safe: str | None = None


@dataclass
class SiteConfig:
    path: str
    name: str
    sources: list[str]
    program: str | None
    interval_ns: int | None
    state_dir: str
    retain_path: str
    event_log_path: str
    retain_period_s: float
    control_host: str
    control_port: int
    watchdog_s: float
    task_watchdogs: dict[str, float] = field(default_factory=dict)
    inputs: list[IoPoint] = field(default_factory=list)
    outputs: list[IoPoint] = field(default_factory=list)
    status_period_s: float = 1.0
    realtime_priority: int | None = None
    io_maps: list[str] = field(default_factory=list)     # absolute paths of io_maps/*.toml
    alarms: list = field(default_factory=list)           # [[alarms]] (runtime/alarms.py AlarmDef)
    io_process: bool = True                              # [io] process: drivers away from the scan's GIL

    @property
    def control_file(self) -> str:
        return os.path.join(self.state_dir, "control.json")


_KNOWN = {
    "site": {"name", "sources", "program", "interval", "state_dir", "watchdog", "status_period",
             "realtime_priority", "io_maps"},
    "retain": {"path", "period"},
    "event_log": {"path"},
    "control": {"listen"},
    "io": {"process"},
}


# sections read by loaders of their own (runtime/opcua/config.py for [opcua])
_OWN_LOADER = ("tasks", "inputs", "outputs", "opcua", "alarms")


class _Reporter:
    def __init__(self, path: str, text: str):
        self.path = path
        self.lines = text.splitlines()
        self.problems: list[str] = []

    def line_of(self, key: str, table: str | None = None) -> int:
        """tomllib keeps no positions: find the key's line by its text."""
        start = 0
        if table is not None:
            pat = re.compile(r"^\s*\[+\s*" + re.escape(table) + r"\s*\]+")
            for i, ln in enumerate(self.lines):
                if pat.match(ln):
                    start = i
                    break
        pat = re.compile(r"^\s*" + re.escape(key.split(".")[-1]) + r"\s*=")
        for i in range(start, len(self.lines)):
            if pat.match(self.lines[i]):
                return i + 1
        return start + 1

    def error(self, key: str, message: str, table: str | None = None) -> None:
        self.problems.append(f"{self.path}:{self.line_of(key, table)}: {key}: {message}")


def duration_ns(rep: _Reporter, key: str, value, table: str) -> int | None:
    """A duration from a TOML file ("100ms", "T#2s"); None after reporting."""
    if not isinstance(value, str):
        rep.error(key, f"expected a duration such as \"100ms\", found {value!r}", table)
        return None
    try:
        return parse_duration_ns(value.split("#", 1)[-1])
    except LiteralError as e:
        rep.error(key, str(e), table)
        return None


def source_paths(rep: _Reporter, key: str, value, base: str, table: str) -> list[str]:
    """The ST files a site or scenario names, relative to its own file."""
    if value is None:
        rep.error(key, "missing: list the ST files, e.g. sources = [\"main.st\"]", table)
        return []
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        rep.error(key, "must be a non-empty list of file names", table)
        return []
    out = []
    for s in value:
        full = os.path.normpath(os.path.join(base, s))
        if not os.path.isfile(full):
            rep.error(key, f"no such file: {s}", table)
        out.append(full)
    return out


def _duration_s(rep: _Reporter, key: str, value, table: str, default: float | None) -> float | None:
    if value is None:
        return default
    ns = duration_ns(rep, key, value, table)
    if ns is None:
        return default
    if ns <= 0:
        rep.error(key, "must be greater than zero", table)
        return default
    return ns / 1e9


def load_site(path: str) -> SiteConfig:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SiteError([f"{path}: cannot read: {e.strerror}"]) from None
    text = raw.decode("utf-8", errors="replace")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SiteError([f"{path}: not valid TOML: {e}"]) from None
    rep = _Reporter(path, text)
    base = os.path.dirname(os.path.abspath(path))

    for table in doc:
        if table not in _KNOWN and table not in _OWN_LOADER:
            rep.error(table, f"unknown section (known: {', '.join(sorted(list(_KNOWN) + list(_OWN_LOADER)))})", table)
    for table, keys in _KNOWN.items():
        sect = doc.get(table, {})
        if not isinstance(sect, dict):
            rep.error(table, "must be a table", table)
            continue
        for k in sect:
            if k not in keys:
                rep.error(f"{table}.{k}", f"unknown key (known: {', '.join(sorted(keys))})", table)

    site = doc.get("site")
    if not isinstance(site, dict):
        rep.error("site", "missing: a [site] section with sources = [...] is required")
        raise SiteError(rep.problems)
    src_paths = source_paths(rep, "site.sources", site.get("sources"), base, "site")
    name = site.get("name", os.path.splitext(os.path.basename(path))[0])
    program = site.get("program")
    if program is not None and not isinstance(program, str):
        rep.error("site.program", "must be a PROGRAM name", "site")
        program = None
    interval = _duration_s(rep, "site.interval", site.get("interval"), "site", None)
    watchdog = _duration_s(rep, "site.watchdog", site.get("watchdog"), "site", 1.0)
    status_period = _duration_s(rep, "site.status_period", site.get("status_period"), "site", 1.0)
    state_dir = os.path.normpath(os.path.join(base, str(site.get("state_dir", "state"))))
    io_maps = []
    if "io_maps" in site:
        v = site["io_maps"]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            rep.error("site.io_maps", "must be a list of I/O map files, e.g. [\"../io_maps/site.toml\"]", "site")
        else:
            for x in v:
                full = os.path.normpath(os.path.join(base, x))
                if not os.path.isfile(full):
                    rep.error("site.io_maps", f"no such file: {x}", "site")
                io_maps.append(full)
    rt_prio = site.get("realtime_priority")
    if rt_prio is not None and (not isinstance(rt_prio, int) or isinstance(rt_prio, bool) or not 1 <= rt_prio <= 98):
        rep.error("site.realtime_priority", "a SCHED_FIFO priority 1..98", "site")
        rt_prio = None

    retain = doc.get("retain", {}) if isinstance(doc.get("retain", {}), dict) else {}
    retain_path = os.path.normpath(os.path.join(base, retain["path"])) if "path" in retain else \
        os.path.join(state_dir, "retain.json")
    retain_period = _duration_s(rep, "retain.period", retain.get("period"), "retain", 1.0)
    elog = doc.get("event_log", {}) if isinstance(doc.get("event_log", {}), dict) else {}
    elog_path = os.path.normpath(os.path.join(base, elog["path"])) if "path" in elog else \
        os.path.join(state_dir, "events.jsonl")

    control = doc.get("control", {}) if isinstance(doc.get("control", {}), dict) else {}
    listen = control.get("listen", "127.0.0.1:0")
    host, port = "127.0.0.1", 0
    m = re.fullmatch(r"(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1):(\d+)", str(listen))
    if not m:
        rep.error("control.listen", f"'{listen}': the control socket listens on loopback only, e.g. 127.0.0.1:7010",
                  "control")
    else:
        host, port = m.group(1).strip("[]"), int(m.group(2))

    io = doc.get("io", {}) if isinstance(doc.get("io", {}), dict) else {}
    io_process = io.get("process", True)
    if not isinstance(io_process, bool):
        rep.error("io.process", f"must be true (the drivers in a process of their own) or false (a thread of "
                  f"the runtime), found {io_process!r}", "io")
        io_process = True

    task_wd: dict[str, float] = {}
    tasks = doc.get("tasks", {})
    if not isinstance(tasks, dict):
        rep.error("tasks", "must be tables like [tasks.Fast]", "tasks")
        tasks = {}
    for tname, tconf in tasks.items():
        tbl = f"tasks.{tname}"
        if not isinstance(tconf, dict):
            rep.error(tbl, "must be a table", tbl)
            continue
        for k in tconf:
            if k != "watchdog":
                rep.error(f"{tbl}.{k}", "unknown key (known: watchdog)", tbl)
        wd = _duration_s(rep, f"{tbl}.watchdog", tconf.get("watchdog"), tbl, None)
        if wd is not None:
            task_wd[tname] = wd

    points: dict[str, list[IoPoint]] = {"inputs": [], "outputs": []}
    for kind in ("inputs", "outputs"):
        items = doc.get(kind, [])
        if not isinstance(items, list):
            rep.error(kind, f"write each as [[{kind}]] with tag = \"Main.x\"", kind)
            continue
        for i, it in enumerate(items):
            if not isinstance(it, dict) or not isinstance(it.get("tag"), str):
                rep.error(f"{kind}[{i}].tag", "missing: every point names its tag, e.g. tag = \"Main.x\"", kind)
                continue
            allowed = {"tag", "safe"} if kind == "outputs" else {"tag"}
            for k in it:
                if k not in allowed:
                    rep.error(f"{kind}[{i}].{k}", f"unknown key (known: {', '.join(sorted(allowed))})", kind)
            safe = it.get("safe")
            points[kind].append(IoPoint(it["tag"], None if safe is None else str(safe).lower()
                                        if isinstance(safe, bool) else str(safe)))
    from .alarms import load_table
    alarms = load_table(rep, doc.get("alarms"))
    if rep.problems:
        raise SiteError(rep.problems)
    return SiteConfig(os.path.abspath(path), str(name), src_paths, program, int(interval * 1e9) if interval else None,
                      state_dir, retain_path, elog_path, retain_period, host, port, watchdog, task_wd,
                      points["inputs"], points["outputs"], status_period, rt_prio, io_maps, alarms, io_process)


def check_against_program(site: SiteConfig, engine, text: str | None = None) -> None:
    """Names in the site file that the program does not have: tasks, tags."""
    from .tags import TagError
    rep = _Reporter(site.path, text if text is not None else open(site.path, encoding="utf-8").read())
    names = {t.name.upper(): t for t in engine.tasks}
    for tname in site.task_watchdogs:
        if tname.upper() not in names:
            rep.error(f"tasks.{tname}", f"the program has no task '{tname}' (tasks: {', '.join(t.name for t in engine.tasks)})",
                      f"tasks.{tname}")
    seen: dict[str, str] = {}
    for kind, pts in (("inputs", site.inputs), ("outputs", site.outputs)):
        for i, pt in enumerate(pts):
            key = f"{kind}[{i}].tag"
            if pt.tag in seen:
                rep.error(key, f"'{pt.tag}' is already bound as one of the {seen[pt.tag]}", kind)
                continue
            seen[pt.tag] = kind
            try:
                if kind == "inputs":
                    engine.declare_input(pt.tag)
                else:
                    engine.declare_output(pt.tag, pt.safe)
            except TagError as e:
                rep.error(key if kind == "inputs" or pt.safe is None else f"{kind}[{i}].safe", str(e), kind)
    if rep.problems:
        raise SiteError(rep.problems)
    for tname, wd in site.task_watchdogs.items():
        names[tname.upper()].watchdog_s = wd
