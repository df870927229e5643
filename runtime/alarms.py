"""Runtime alarms: BOOL conditions with an active/acknowledged state machine.

Declare an alarm on a BOOL variable of a program or function block (in an FB
type it is one alarm per instance, e.g. Main.strings[3].ovTrip):

    {attribute 'alarm' := 'severity=800; message=Cell over-voltage trip; latch'}
    ovTrip : BOOL;

or in the site file, for variables whose source you do not want to touch:

    [[alarms]]
    tag = "Main.bmsCommLost"
    severity = 900              # 1..1000 (OPC UA severity), default 500
    message = "BMS communication lost"
    latch = true                # stays active until reset once the condition is gone
    ack = "Main.ackCmd"         # optional: set TRUE (queued write) when acknowledged
    reset = "Main.resetCmd"     # optional: set TRUE when reset

Pragma settings: severity=N, message=text, latch, ack=Inst.var, reset=Inst.var.

States (OPC UA AlarmCondition / ISA-18.2): the condition rising makes the
alarm active and unacknowledged; falling clears it (a latching alarm stays
active until reset). An alarm that cleared before anyone acknowledged it
stays in the list (retained) until acknowledged. Acknowledge and reset are
logged with the user. The ack/reset hooks let the program see the
operator's action: the runtime queues TRUE into the named BOOL at the next
scan, and the program clears it when it has acted.

`AlarmSet.after_scan` runs on the scan thread right after each scan and
costs one read and compare per alarm; transitions go to the event log and
to listeners (the OPC UA bridge), which must be cheap and thread-safe.
"""
from __future__ import annotations

from dataclasses import dataclass

from plc_lang.types import ArrayType, BoolType, FBType, strip_subrange

from . import tags
from .pragmas import attributes, settings

SEVERITY_DEFAULT = 500


class AlarmError(ValueError):
    """Refused: unknown alarm, reset while the condition is present, ..."""


@dataclass
class AlarmDef:
    path: str                      # canonical tag path of the BOOL condition; also the alarm's name
    severity: int = SEVERITY_DEFAULT
    message: str = ""
    latch: bool = False
    ack_tag: str | None = None
    reset_tag: str | None = None
    origin: str = "pragma"         # "pragma" or "file:line" of the [[alarms]] entry


@dataclass
class AlarmState:
    name: str
    severity: int
    message: str
    active: bool = False
    acked: bool = True
    condition: bool = False
    since_ns: int = 0              # engine time of the last transition
    scan: int = 0
    who: str | None = None         # who acknowledged or reset last
    comment: str = ""

    @property
    def retain(self) -> bool:
        """Still in the alarm list: active, or cleared but not acknowledged."""
        return self.active or not self.acked


@dataclass
class Transition:
    name: str
    what: str                      # "active" | "cleared" | "acked" | "reset"
    state: AlarmState              # a copy taken at the transition


# ------------------------------------------------------------------ declarations
def declared_in_source(engine) -> list[AlarmDef]:
    """Alarms declared by pragma on BOOL variables, one per instance."""
    out: list[AlarmDef] = []
    for inst in engine.instances.values():
        _walk(inst.name, inst.pou, out)
    return out


def _walk(prefix: str, pou, out: list[AlarmDef]) -> None:
    for v in pou.vars.values():
        if v.section in ("VAR_TEMP", "VAR_EXTERNAL", "VAR_IN_OUT", "RESULT"):
            continue
        t = strip_subrange(v.type)
        attr = attributes(v.pragmas)
        if "alarm" in attr and isinstance(t, BoolType):
            s = settings(attr["alarm"])
            flags = {p.strip().lower() for p in (attr["alarm"] or "").split(";") if "=" not in p}
            sev = s.get("severity", str(SEVERITY_DEFAULT))
            out.append(AlarmDef(f"{prefix}.{v.name}", int(sev) if sev.isdigit() else SEVERITY_DEFAULT,
                                s.get("message", v.name), "latch" in flags or s.get("latch") == "true",
                                s.get("ack"), s.get("reset")))
        elif isinstance(t, FBType) and not t.pou.std:
            _walk(f"{prefix}.{v.name}", t.pou, out)
        elif isinstance(t, ArrayType) and isinstance(t.elem, FBType) and not t.elem.pou.std:
            for idx in _indexes(t.dims):
                _walk(f"{prefix}.{v.name}[{', '.join(map(str, idx))}]", t.elem.pou, out)


def _indexes(dims):
    if not dims:
        yield ()
        return
    lo, hi = dims[0]
    for i in range(lo, hi + 1):
        for rest in _indexes(dims[1:]):
            yield (i, *rest)


def load_table(rep, items, table: str = "alarms") -> list[AlarmDef]:
    """The [[alarms]] entries of a site file; problems go to rep (site._Reporter)."""
    out: list[AlarmDef] = []
    if items is None:
        return out
    if not isinstance(items, list):
        rep.error(table, f"write each alarm as [[{table}]] with tag = \"Main.x\"", table)
        return out
    known = {"tag", "severity", "message", "latch", "ack", "reset"}
    for i, it in enumerate(items):
        key = f"{table}[{i}]"
        if not isinstance(it, dict) or not isinstance(it.get("tag"), str):
            rep.error(f"{key}.tag", "missing: every alarm names its BOOL variable, e.g. tag = \"Main.trip\"", table)
            continue
        for k in it:
            if k not in known:
                rep.error(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(known))})", table)
        sev = it.get("severity", SEVERITY_DEFAULT)
        if not isinstance(sev, int) or isinstance(sev, bool) or not 1 <= sev <= 1000:
            rep.error(f"{key}.severity", "an OPC UA severity 1..1000", table)
            sev = SEVERITY_DEFAULT
        latch = it.get("latch", False)
        if not isinstance(latch, bool):
            rep.error(f"{key}.latch", "true or false", table)
            latch = False
        for k in ("message", "ack", "reset"):
            if k in it and not isinstance(it[k], str):
                rep.error(f"{key}.{k}", "must be a string", table)
        out.append(AlarmDef(it["tag"], sev, str(it.get("message", it["tag"])), latch,
                            it.get("ack") if isinstance(it.get("ack"), str) else None,
                            it.get("reset") if isinstance(it.get("reset"), str) else None,
                            f"{rep.path}:{rep.line_of('tag', table)}"))
    return out


# ------------------------------------------------------------------ the live set
class AlarmSet:
    """The alarms of one engine. after_scan on the scan thread; acknowledge
    and reset from any thread while holding the runtime lock."""

    def __init__(self, engine, defs: list[AlarmDef], events=None):
        self.engine = engine
        self.events = events or (lambda kind, data: None)
        self._listeners: list = []
        self.defs: dict[str, AlarmDef] = {}
        self.states: dict[str, AlarmState] = {}
        self._watch: list[tuple[tags.Tag, AlarmState, AlarmDef]] = []
        problems = []
        for d in defs:
            try:
                t = engine.scalar_tag(d.path, "alarm on")
            except tags.TagError as e:
                problems.append(f"{d.origin}: alarm: {e}")
                continue
            if not isinstance(strip_subrange(t.type), BoolType):
                problems.append(f"{d.origin}: alarm: '{t.path}' is {t.type}; an alarm condition is a BOOL")
                continue
            for hook in (d.ack_tag, d.reset_tag):
                if hook is not None:
                    try:
                        h = engine.scalar_tag(hook, "alarm hook")
                        if not isinstance(strip_subrange(h.type), BoolType):
                            problems.append(f"{d.origin}: alarm {t.path}: hook '{hook}' is {h.type}, not BOOL")
                    except tags.TagError as e:
                        problems.append(f"{d.origin}: alarm {t.path}: {e}")
            if t.path in self.defs:
                continue                 # declared by pragma and in the file: the first wins
            d.path = t.path
            st = AlarmState(t.path, d.severity, d.message)
            self.defs[t.path] = d
            self.states[t.path] = st
            self._watch.append((t, st, d))
        if problems:
            raise AlarmError("\n".join(problems))

    def listen(self, fn) -> None:
        """fn(Transition), called on the thread that caused it."""
        self._listeners.append(fn)

    def after_scan(self, scan_no: int, now_ns: int) -> None:
        for tag, st, d in self._watch:
            cond = tag.get()
            if cond == st.condition:
                continue
            st.condition = cond = bool(cond)
            if cond:
                if st.active and d.latch:
                    continue             # a latched alarm that comes back is the same alarm
                st.active, st.acked = True, False
                self._emit(st, "active", now_ns, scan_no, None)
            elif st.active and not d.latch:
                st.active = False
                self._emit(st, "cleared", now_ns, scan_no, None)

    def acknowledge(self, name: str, who: str, comment: str = "") -> AlarmState:
        st = self._state(name)
        if st.acked:
            raise AlarmError(f"alarm '{st.name}' is already acknowledged")
        st.acked = True
        st.comment = comment
        self._emit(st, "acked", self.engine.ctx.now_ns, self.engine.scan_count, who)
        self._hook(self.defs[st.name].ack_tag, who)
        return st

    def reset(self, name: str, who: str) -> AlarmState:
        st = self._state(name)
        d = self.defs[st.name]
        if not (d.latch and st.active):
            raise AlarmError(f"alarm '{st.name}' is not latched")
        if st.condition:
            raise AlarmError(f"alarm '{st.name}': the condition is still present")
        st.active = False
        st.acked = True
        self._emit(st, "reset", self.engine.ctx.now_ns, self.engine.scan_count, who)
        self._hook(d.reset_tag, who)
        return st

    def snapshot(self) -> list[AlarmState]:
        return [AlarmState(**vars(s)) for s in self.states.values()]

    def _state(self, name: str) -> AlarmState:
        st = self.states.get(name)
        if st is None:
            try:
                st = self.states.get(self.engine.tag(name).path)
            except tags.TagError:
                st = None
        if st is None:
            raise AlarmError(f"no alarm '{name}'")
        return st

    def _hook(self, path: str | None, who: str) -> None:
        if path is not None:
            self.engine.queue_write(path, "TRUE", who)

    def _emit(self, st: AlarmState, what: str, now_ns: int, scan: int, who: str | None) -> None:
        st.since_ns = now_ns
        st.scan = scan
        st.who = who
        data = {"name": st.name, "what": what, "severity": st.severity, "message": st.message,
                "active": st.active, "acked": st.acked}
        if who is not None:
            data["who"] = who
        if what == "acked" and st.comment:
            data["comment"] = st.comment
        self.events("alarm", data)
        tr = Transition(st.name, what, AlarmState(**vars(st)))
        for fn in self._listeners:
            fn(tr)


def alarm_set(engine, table: list[AlarmDef] | None = None, events=None) -> AlarmSet:
    """Pragma-declared alarms plus the site file's table."""
    return AlarmSet(engine, declared_in_source(engine) + list(table or ()), events)
