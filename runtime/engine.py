"""The engine: a sans-I/O scan step over a compiled program.

`Engine.scan(now_ns)` latches the time, runs the tasks due at `now_ns` in
priority order, and records faults. It never reads the wall clock except
through the watchdog. Offline (`gridplc sim`) and live modes call the same
`scan`, so they share every line that decides outputs.
"""
from __future__ import annotations

import heapq
import math
import operator
import sys
import threading
import time
import weakref
import traceback
from dataclasses import dataclass, field
from itertools import compress

from plc_lang.codegen import GENERATED_FILENAME, CompiledProgram
from plc_lang.model import PouInfo
from plc_lang.rt_support import Context
from plc_lang.types import FBType
from plc_lang.values import PlcFault

from . import tags
from .io.convert import field_value
from .io.image import InputStage, OutputImage
from .io.quality import BAD, GOOD, STALE, WAITING
from .watchdog import Watchdog


class EngineError(Exception):
    """Configuration problems found when the engine is built (not ST faults).
    `code` is a diagnostic code when one applies (E0092: nothing to run)."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


@dataclass
class Fault:
    task: str
    what: str
    where: str | None          # file:line:col in the ST source
    scan: int                  # the engine's scan number (1-based)
    time_ns: int

    def __str__(self) -> str:
        loc = f"{self.where}: " if self.where else ""
        return f"{loc}fault: {self.what} (scan {self.scan})"


@dataclass
class Task:
    name: str
    interval_ns: int
    priority: int
    order: int
    instances: list = field(default_factory=list)     # (name, object)
    faulted: Fault | None = None
    scans: int = 0
    watchdog_s: float = 1.0
    exec_last_ns: int = 0
    exec_min_ns: int = 0
    exec_max_ns: int = 0
    exec_total_ns: int = 0


@dataclass
class Input:
    """A program variable the field writes, with what the I/O map says of it."""
    path: str
    tag: tags.Tag
    timeout_ns: int | None = None        # stale when the source timestamp is older
    substitute: object = None            # seen by the program while quality is not GOOD
    range: tuple[float, float] | None = None   # outside it the value is BAD


@dataclass
class Output:
    """A program variable the field sees; its safe value goes out on a fault."""
    path: str
    tag: tags.Tag
    safe: object
    task: Task


WRITE_QUEUE_LEN_MAX = 1024


@dataclass
class Instance:
    name: str
    pou: PouInfo
    obj: object


class Engine:
    def __init__(self, program: CompiledProgram, *, program_name: str | None = None,
                 interval_ns: int | None = None, watchdog_s: float = 1.0, realtime_priority: int | None = None):
        self.program = program
        self.project = program.project
        self.ns = program.load()
        self.ctx = Context()
        self.ns["g__"] = self.ns["Globals__"](self.ctx)
        self.globals = self.ns["g__"]
        self.instances: dict[str, Instance] = {}
        self.tasks: list[Task] = []
        self.scan_count = 0
        self.faults: list[Fault] = []
        self.watchdog_s = watchdog_s
        self._wd = Watchdog(self.ns["wd__"], watchdog_s, realtime_priority)
        self._build_tasks(program_name, interval_ns)
        for t in self.tasks:
            t.watchdog_s = watchdog_s
        # process images and the external write path (see scan())
        # Inputs: drivers publish into input_stage (any thread); single-threaded
        # callers (scenarios, replay) use stage_input. Both land in input_image
        # (value) and input_quality ((quality, source ts)) and are latched at
        # the start of the next scan. No quality entry means GOOD and fresh.
        # The latch visits only what may have changed (see _latch_inputs).
        self.inputs: dict[str, tags.Tag] = {}
        self.input_points: dict[str, Input] = {}
        self.outputs: dict[str, Output] = {}
        self.input_stage = InputStage()
        # paths to latch, in the order they were written (a dict: the latch runs
        # in a reproducible order, and near the drivers' order, which keeps it fast)
        self._dirty: dict[str, None] = {}
        self.input_image: dict[str, object] = _Tracked(self._dirty)
        self.input_quality: dict[str, tuple[int, int | None]] = _Tracked(self._dirty)
        self.latched_quality: dict[str, tuple[int, int | None]] = {}
        self._latch_all = True
        self._forced_seen: set[str] = set()
        self._armed: dict[str, int] = {}         # path -> the deadline its live heap entry carries
        self._heap: list[tuple[int, str]] = []   # (deadline, path): ts + timeout of a GOOD value
        self._guards: list[tuple] = []
        self._guard_slot: dict[str, tuple[list, int]] = {}
        self.latched_last = 0                    # inputs the last scan latched (status, bench, tests)
        self.io_outputs = OutputImage()
        self.output_image: dict[str, object] = self.io_outputs.values
        self.forced: dict[str, object] = {}
        self._forced_tags: dict[str, tags.Tag] = {}
        self._writes: list[tuple[str, object, str]] = []
        self._write_lock = threading.Lock()
        self.last_applied: list[tuple[str, object, str]] = []
        self.events = _no_events          # (kind, data) -> None; the live runtime logs them
        self._retain_tags = None
        self._roots = None
        self._issued = weakref.WeakSet()
        self.resets: list[tuple[str, str]] = []     # since the journal last looked
        self._logged = self._logged_tags()

    # ------------------------------------------------------------ set-up
    def _build_tasks(self, program_name: str | None, interval_ns: int | None) -> None:
        p = self.project
        cfg = p.config
        if cfg is not None and program_name is None:
            tasks = {}
            for t in cfg.tasks:
                tasks[t.name.upper()] = Task(t.name, t.interval_ns, t.priority, t.order)
            unassigned = []
            for inst in cfg.instances:
                obj = self._new(inst.pou)
                self.instances[inst.name.upper()] = Instance(inst.name, inst.pou, obj)
                if inst.task is None:
                    unassigned.append((inst.name, obj))
                else:
                    tasks[inst.task.name.upper()].instances.append((inst.name, obj))
            intervals = [t.interval_ns for t in tasks.values() if t.instances]
            base = math.gcd(*intervals) if intervals else None
            if interval_ns is not None and base is not None and interval_ns != base:
                raise EngineError(f"--interval {interval_ns / 1e6:g}ms disagrees with the configuration "
                                  f"'{cfg.name}', whose base period is {base / 1e6:g}ms; omit --interval")
            if unassigned:
                period = base or interval_ns
                if period is None:
                    raise EngineError("program instances without a task need --interval")
                tasks["__DEFAULT"] = Task("default", period, 32, len(tasks), unassigned)
            self.tasks = sorted((t for t in tasks.values() if t.instances), key=lambda t: (t.priority, t.order))
            self.base_period_ns = base or interval_ns
            return
        progs = [v for v in p.pous.values() if v.kind == "PROGRAM"]
        if program_name is not None:
            pou = p.pous.get(program_name.upper())
            if pou is None or pou.kind != "PROGRAM":
                names = ", ".join(v.name for v in progs) or "none"
                raise EngineError(f"'{program_name}' is not a PROGRAM (programs: {names})", "E0092")
        elif len(progs) == 1:
            pou = progs[0]
        elif not progs:
            raise EngineError("there is no PROGRAM to run", "E0092")
        else:
            raise EngineError("several PROGRAMs and no CONFIGURATION: choose one with --program "
                              f"({', '.join(v.name for v in progs)})")
        if interval_ns is None:
            raise EngineError("--interval is required when there is no CONFIGURATION (e.g. --interval 100ms)")
        obj = self._new(pou)
        self.instances[pou.name.upper()] = Instance(pou.name, pou, obj)
        self.tasks = [Task("default", interval_ns, 0, 0, [(pou.name, obj)])]
        self.base_period_ns = interval_ns

    def _new(self, pou: PouInfo):
        return self.ns[self.program.class_names[pou.key]](self.ctx)

    def close(self) -> None:
        self._wd.close()

    # ------------------------------------------------------------ the scan
    def due(self, now_ns: int) -> list[Task]:
        return [t for t in self.tasks if now_ns % t.interval_ns == 0]

    def scan(self, now_ns: int, due: list[Task] | None = None) -> list[Fault]:
        """One scan at latched time now_ns: latch inputs, apply queued writes
        and forces, run the due tasks in priority order, publish outputs.
        Returns the faults raised in it."""
        self.scan_count += 1
        ctx = self.ctx
        ctx.now_ns = now_ns
        ctx.now_ms = now_ns // 1_000_000
        if self.inputs:
            self._latch_inputs(now_ns)
        if self._writes:
            with self._write_lock:
                applied, self._writes = self._writes, []
            for tag, value, who in applied:
                tag.set(value)
            self.last_applied = [(tag.path, value, who) for tag, value, who in applied]
        elif self.last_applied:
            self.last_applied = []
        if self.forced:
            self._apply_forces()
        new_faults = []
        perf = time.perf_counter_ns
        for task in (self.due(now_ns) if due is None else due):
            if task.faulted is not None:
                continue
            task.scans += 1
            wd = self._wd
            wd.arm(task.watchdog_s)
            t0 = perf()
            try:
                for _name, obj in task.instances:
                    obj.body__()
            except BaseException as exc:  # noqa: BLE001 - every ST fault must be contained
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                new_faults.append(self._fault(task, exc, now_ns))
            finally:
                wd.disarm()
            dt = perf() - t0
            task.exec_last_ns = dt
            task.exec_total_ns += dt
            if dt > task.exec_max_ns:
                task.exec_max_ns = dt
            if dt < task.exec_min_ns or task.scans == 1:
                task.exec_min_ns = dt
            if task.faulted is None and dt > task.watchdog_s * 1e9:
                f = Fault(task.name, f"watchdog: the scan took {dt / 1e6:.1f} ms, more than {task.watchdog_s * 1e3:g} ms",
                          None, self.scan_count, now_ns)
                self._stop_task(task, f)
                new_faults.append(f)
        if self.forced:
            self._apply_forces()
        if self._logged:
            self._log_changes()
        self.io_outputs.committed_ns = now_ns
        if self.outputs:
            img = self.output_image
            changed = False
            for path, out in self.outputs.items():
                v = out.safe if out.task.faulted is not None else out.tag.get()
                if img.get(path, _NONE) != v:
                    img[path] = v
                    changed = True
            if changed:
                self.io_outputs.changed()
        return new_faults

    def _logged_tags(self) -> list[list]:
        """[tag, last value] of program variables marked {attribute 'log'}:
        every change goes to the event log (e.g. a dispatch clamp record)."""
        from .pragmas import attributes
        out = []
        for inst in self.instances.values():
            for v in inst.pou.vars.values():
                if "log" in attributes(v.pragmas) and v.section not in ("VAR_TEMP", "VAR_EXTERNAL"):
                    t = self.tag(f"{inst.name}.{v.name}")
                    out.append([t, t.get()])
        return out

    def _log_changes(self) -> None:
        for entry in self._logged:
            tag, last = entry
            v = tag.get()
            if v != last:
                entry[1] = v
                self.events("log", {"path": tag.path, "value": tags.to_json_value(v, tag.type),
                                    "was": tags.to_json_value(last, tag.type)})

    def _latch_inputs(self, now_ns: int) -> None:
        """Latch the inputs that may differ from what the last scan latched:
        those staged since (input_image and input_quality record every key
        written), those whose GOOD value passed its deadline (source ts +
        timeout, kept in a heap), those forced or released, and those whose
        variable no longer holds what the latch put there (the program, a
        set or a restore wrote it; the latch puts it back, as it always
        has). Everything else would be latched to what it already is."""
        staged = self.input_stage.take()
        if staged:
            self._take_updates(staged, now_ns)
        dirty = self._dirty
        forced = self.forced
        if forced.keys() != self._forced_seen:
            dirty.update(dict.fromkeys(sorted(self._forced_seen.symmetric_difference(forced))))
            self._forced_seen = set(forced)
        points = self.input_points
        if self._latch_all:         # the first scan, a new input, new program objects
            self._latch_all = False
            dirty.clear()
            self._guards, self._guard_slot = [], {}
            todo = list(points)
        else:
            heap = self._heap
            if heap and heap[0][0] < now_ns:
                self._deadlines_due(now_ns)
            for get, holders, keys, held, paths in self._guards:
                if any(map(operator.is_not, map(get, holders, keys), held)):
                    dirty.update(dict.fromkeys(compress(paths, map(operator.is_not, map(get, holders, keys), held))))
            if not dirty:
                self.latched_last = 0
                return
            todo = list(dirty)
            dirty.clear()
        quality = self.input_quality
        latched = self.latched_quality
        io = self.ctx.io
        image = self.input_image
        armed, heap = self._armed, self._heap
        slots = self._guard_slot
        for path in todo:
            pt = points.get(path)
            if pt is None:
                continue
            tag = pt.tag
            q_ts = quality.get(path)
            if q_ts is None:
                q, ts = (GOOD, None) if path in image else (WAITING, None)
            else:
                q, ts = q_ts
                if q == GOOD and ts is not None and pt.timeout_ns is not None:
                    if now_ns - ts > pt.timeout_ns:
                        q = STALE
                    else:
                        due = ts + pt.timeout_ns
                        a = armed.get(path)
                        if a is None or due < a:
                            armed[path] = due
                            heapq.heappush(heap, (due, path))
            if path not in forced:
                if q != GOOD and pt.substitute is not None:
                    v = pt.substitute
                    tag.set(v)
                elif path in image:
                    v = image[path]
                    tag.set(v)
                else:
                    v = tag.get()
            else:
                q = GOOD        # a forced value is what the operator vouches for
                v = tag.get()
            latched[path] = (q, ts)
            io[(id(tag.holder), tag.key)] = (q, ts)
            slot = slots.get(path)
            if slot is not None:
                slot[0][slot[1]] = v    # what the variable holds now: a plain store keeps the object
        self.latched_last = len(todo)
        if not self._guards:
            self._build_guards()

    def _deadlines_due(self, now_ns: int) -> None:
        """Mark for latching the inputs whose GOOD value is older than its
        timeout now. A heap entry is a lower bound of its input's deadline:
        one updated since is pushed back to its new deadline, so a steadily
        updated input costs one heap step per timeout, not one per update."""
        heap, armed, dirty = self._heap, self._armed, self._dirty
        quality, points = self.input_quality, self.input_points
        while heap and heap[0][0] < now_ns:
            due, path = heapq.heappop(heap)
            if armed.get(path) != due:
                continue                    # an earlier entry replaced this one
            del armed[path]
            q_ts = quality.get(path)
            pt = points.get(path)
            if q_ts is None or pt is None or q_ts[0] != GOOD or q_ts[1] is None or pt.timeout_ns is None:
                dirty[path] = None          # not GOOD with a timeout any more: the latch decides
                continue
            cur = q_ts[1] + pt.timeout_ns
            if cur < now_ns:
                dirty[path] = None
            else:
                armed[path] = cur
                heapq.heappush(heap, (cur, path))

    def _build_guards(self) -> None:
        """What each input's variable held after its latch, by identity: a
        scan compares them all in C (map/is_not, tens of ns an input) to find
        variables written since, without visiting each input in Python."""
        by_kind: dict[bool, tuple] = {}
        slots = {}
        for path, pt in self.input_points.items():
            t = pt.tag
            item = isinstance(t.key, int)
            g = by_kind.get(item)
            if g is None:
                g = by_kind[item] = (operator.getitem if item else getattr, [], [], [], [])
            slots[path] = (g[3], len(g[3]))
            g[1].append(t.holder)
            g[2].append(t.key)
            g[3].append(t.get())
            g[4].append(path)
        self._guards = list(by_kind.values())
        self._guard_slot = slots

    def _take_updates(self, staged: dict, now_ns: int) -> None:
        points = self.input_points
        image, quality, dirty = self.input_image, self.input_quality, self._dirty
        put = dict.__setitem__          # the plain store: dirty is marked once, below
        for path, (value, q, ts) in staged.items():
            pt = points.get(path)
            if pt is None:
                continue
            if ts is None:
                ts = now_ns
            if value is not None:
                v = field_value(value, pt.tag.type)
                r = pt.range
                if v is None or (r is not None and not (r[0] <= value <= r[1])):
                    q = BAD                 # keep the last good value, say it is not trusted
                else:
                    put(image, path, v)
            put(quality, path, (q, ts))
            dirty[path] = None

    def stage_input(self, path: str, value, quality: int = GOOD, ts_ns: int | None = None) -> None:
        """Offline callers: stage an input for the next scan, through the same
        conversion and range rules as a driver's update. value None keeps the
        last value; ts_ns None means fresh at every scan (never stale)."""
        if value is not None:
            pt = self.input_points.get(path)
            if pt is not None:
                v = field_value(value, pt.tag.type)
                r = pt.range
                if v is None or (r is not None and not (r[0] <= value <= r[1])):
                    self.input_quality[path] = (BAD, ts_ns)
                    return
                value = v
            self.input_image[path] = value
        self.input_quality[path] = (quality, ts_ns)

    def quality(self, path: str) -> tuple[int, int | None]:
        """(quality, source timestamp) as the last scan latched it; GOOD for
        variables no driver feeds."""
        return self.latched_quality.get(path, (GOOD, None))

    def _apply_forces(self) -> None:
        for path, value in self.forced.items():
            self._forced_tags[path].set(value)

    # ------------------------------------------------------------ the external write path
    def scalar_tag(self, path: str, what: str) -> tags.Tag:
        t = self.tag(path)
        if not _scalar(t.type):
            raise tags.TagError(f"{what} '{path}' is {t.type}; use its elements one by one")
        return t

    def declare_input(self, path: str, timeout_ns: int | None = None, substitute_text: str | None = None,
                      valid_range: tuple[float, float] | None = None) -> str:
        """Returns the canonical path, the key of input_image."""
        t = self.scalar_tag(path, "input")
        sub = tags.parse_value(substitute_text, t.type) if substitute_text is not None else None
        self.inputs[t.path] = t
        self.input_points[t.path] = Input(t.path, t, timeout_ns, sub, valid_range)
        self._latch_all = True
        return t.path

    def declare_output(self, path: str, safe_text: str | None = None) -> str:
        t = self.scalar_tag(path, "output")
        safe = tags.parse_value(safe_text, t.type) if safe_text is not None else t.get()
        self.outputs[t.path] = Output(t.path, t, safe, self._task_of(t.path))
        self.output_image[t.path] = t.get()
        return t.path

    def refresh_outputs(self) -> None:
        """After restoring retained values: the image shows them before scan 1."""
        for p, out in self.outputs.items():
            self.output_image[p] = out.tag.get()

    def _task_of(self, path: str) -> Task:
        inst = path.split(".", 1)[0].strip().upper()
        for task in self.tasks:
            if any(name.upper() == inst for name, _ in task.instances):
                return task
        raise tags.TagError(f"'{path}' belongs to no task")

    def queue_write(self, path: str, value_text: str, who: str) -> tuple[object, object]:
        """Validate now, apply at the start of the next scan, in arrival order.
        Returns (old value, new value). Raises TagError when refused."""
        t = self.scalar_tag(path, "write of")
        if t.path in self.inputs:
            raise tags.TagError(f"'{t.path}' is an input bound to the field; force it instead")
        value = tags.parse_value(value_text, t.type)
        old = t.get()
        with self._write_lock:
            if len(self._writes) >= WRITE_QUEUE_LEN_MAX:
                raise tags.TagError(f"write queue full ({WRITE_QUEUE_LEN_MAX} pending)")
            self._writes.append((t, value, who))
        self.events("write", {"path": t.path, "old": tags.to_json_value(old, t.type),
                              "new": tags.to_json_value(value, t.type), "who": who})
        return old, value

    def force(self, path: str, value_text: str, who: str) -> object:
        t = self.scalar_tag(path, "force of")
        value = tags.parse_value(value_text, t.type)
        self.forced[t.path] = value
        self._forced_tags[t.path] = t
        self.events("force", {"path": t.path, "value": tags.to_json_value(value, t.type), "who": who})
        return value

    def release(self, path: str, who: str) -> None:
        p = self.tag(path).path
        if p not in self.forced:
            raise tags.TagError(f"'{p}' is not forced")
        del self.forced[p]
        del self._forced_tags[p]
        self.events("release", {"path": p, "who": who})

    # ------------------------------------------------------------ faults and restarts
    def _stop_task(self, task: Task, f: Fault) -> None:
        task.faulted = f
        self.faults.append(f)
        for out in self.outputs.values():
            if out.task is task:
                self.output_image[out.path] = out.safe
        if self.outputs:
            self.io_outputs.changed()           # drivers send the safe values now, not at the next change
        self.events("fault", {"task": task.name, "what": f.what, "where": f.where, "scan": f.scan})

    def reset_task(self, name: str, mode: str, who: str, retained: dict | None = None) -> None:
        """Restart a task: its program instances are built afresh; a warm
        restart restores their RETAIN and PERSISTENT values, a cold one only
        PERSISTENT ones (CODESYS)."""
        task = self.task(name)
        if mode not in ("warm", "cold"):
            raise tags.TagError(f"reset mode must be warm or cold, not '{mode}'")
        keep = self.retained(task, persistent_only=(mode == "cold")) if retained is None else retained
        fresh = []
        for inst_name, _old in task.instances:
            inst = self.instances[inst_name.upper()]
            inst.obj = self._new(inst.pou)
            fresh.append((inst_name, inst.obj))
        task.instances = fresh
        self._rebind()
        self.restore(keep)
        task.faulted = None
        self.resets.append((task.name, mode))
        self.events("reset", {"task": task.name, "mode": mode, "who": who})

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name.upper() == name.upper():
                return t
        raise tags.TagError(f"no task '{name}' (tasks: {', '.join(t.name for t in self.tasks)})")

    def _rebind(self) -> None:
        """Program objects were replaced: re-point every tag handed out."""
        self._roots = None
        # quality is keyed by object identity: an old object's id may be reused
        # by a new one; the next latch writes every bound input afresh
        self.ctx.io.clear()
        self._latch_all = True
        roots = self.roots()
        for t in list(self._issued):
            fresh = tags.resolve(t.path, roots)
            t.holder, t.key = fresh.holder, fresh.key

    # ------------------------------------------------------------ retain
    def retained_paths(self, task: Task | None = None, persistent_only: bool = False) -> dict[str, object]:
        """path -> type of every RETAIN/PERSISTENT variable (in FB instances too)."""
        out: dict[str, object] = {}
        names = {n.upper() for n, _ in task.instances} if task is not None else None
        for key, inst in self.instances.items():
            if names is not None and key not in names:
                continue
            _collect_retained(inst.name, inst.pou, out, persistent_only, False)
        if task is None and self.project.globals:
            # VAR_GLOBAL RETAIN: the configuration's, not a task's (a task reset leaves globals alone)
            gp = PouInfo(self.globals_root, "GLOBALS", None, vars=dict(self.project.globals))
            _collect_retained(self.globals_root, gp, out, persistent_only, False)
        return out

    def retained(self, task: Task | None = None, persistent_only: bool = False) -> dict[str, tuple[str, object]]:
        """path -> (type signature, JSON value) of the retained variables now."""
        if task is None and not persistent_only:
            if self._retain_tags is None:      # resolved once; a reset rebinds
                self._retain_tags = [(p, str(t), t, self.tag(p)) for p, t in self.retained_paths().items()]
            tj = tags.to_json_value
            return {p: (sig, tj(tag.get(), t)) for p, sig, t, tag in self._retain_tags}
        out = {}
        for path, t in self.retained_paths(task, persistent_only).items():
            out[path] = (str(t), tags.to_json_value(self.tag(path).get(), t))
        return out

    def restore(self, entries: dict[str, tuple[str, object]]) -> None:
        for path, (_sig, value) in entries.items():
            tag = self.tag(path)
            tags.assign_json(tag, value)

    def _fault(self, task: Task, exc: BaseException, now_ns: int) -> Fault:
        where = getattr(exc, "where", None) if isinstance(exc, PlcFault) else None
        what = describe_exception(exc)
        if what.startswith("internal error"):
            # Not an ST fault: a bug in gridplc. Still contained, but say so.
            traceback.print_exception(exc, file=sys.stderr)
        if where is None:
            where = self._locate(exc)
        f = Fault(task.name, what, where, self.scan_count, now_ns)
        self._stop_task(task, f)
        return f

    def _locate(self, exc: BaseException) -> str | None:
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == GENERATED_FILENAME:
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is None:
            return None
        span = self.program.span_for_line(line)
        return str(span) if span is not None else None

    # ------------------------------------------------------------ tags
    @property
    def globals_root(self) -> str:
        """Tag paths of VAR_GLOBALs start with the CONFIGURATION's name
        (`Bess.gBat.soc`), or `Globals` without one."""
        cfg = self.project.config
        return cfg.name if cfg is not None else "Globals"

    def roots(self) -> dict:
        if self._roots is None:
            self._roots = {k: (i.obj, FBType(i.pou.name, i.pou), i.name) for k, i in self.instances.items()}
            if self.project.globals and self.globals_root.upper() not in self._roots:
                name = self.globals_root
                gp = PouInfo(name, "GLOBALS", None, vars=dict(self.project.globals))
                self._roots[name.upper()] = (self.globals, FBType(name, gp), name)
        return self._roots

    def tag(self, path: str) -> tags.Tag:
        """A resolved tag. The engine keeps every tag it hands out up to date
        when a reset replaces program objects (see _rebind)."""
        t = tags.resolve(path, self.roots())
        self._issued.add(t)
        return t

    def set_text(self, path: str, text: str) -> None:
        t = self.scalar_tag(path, "setting")
        t.set(tags.parse_value(text, t.type))

    def snapshot(self) -> dict:
        """Every program instance's variables, keyed `Instance.var` (JSON-ready)."""
        out = {}
        for inst in self.instances.values():
            for v in inst.pou.vars.values():
                if v.section in ("VAR_TEMP",):
                    continue
                if v.section == "VAR_EXTERNAL":
                    val = getattr(self.globals, v.pyname)
                else:
                    val = getattr(inst.obj, v.pyname)
                out[f"{inst.name}.{v.name}"] = tags.to_json_value(val, v.type)
        return out

    def run(self, cycles: int, start_ns: int = 0) -> Fault | None:
        """Offline: `cycles` base ticks on the virtual clock, first at start_ns."""
        period = self.base_period_ns
        for k in range(cycles):
            faults = self.scan(start_ns + k * period)
            if faults:
                return faults[0]
        return None


_NONE = object()


class _Tracked(dict):
    """input_image / input_quality: a dict that notes every key written, so
    the latch needs to look only at those, whoever wrote them (drivers via
    the stage, stage_input, a journal replay storing into it directly)."""
    __slots__ = ("dirty",)

    def __init__(self, dirty: dict):
        super().__init__()
        self.dirty = dirty

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        self.dirty[key] = None

    def __delitem__(self, key):
        dict.__delitem__(self, key)
        self.dirty[key] = None

    def pop(self, key, *default):
        self.dirty[key] = None
        return dict.pop(self, key, *default)

    def setdefault(self, key, default=None):
        self.dirty[key] = None
        return dict.setdefault(self, key, default)

    def update(self, *args, **kw):
        new = dict(*args, **kw)
        dict.update(self, new)
        self.dirty.update(dict.fromkeys(new))

    def clear(self):
        self.dirty.update(dict.fromkeys(self))
        dict.clear(self)

    def popitem(self):
        key, value = dict.popitem(self)
        self.dirty[key] = None
        return key, value


def describe_exception(exc: BaseException) -> str:
    """What a fault raised by generated code means, in the user's words."""
    if isinstance(exc, PlcFault):
        return exc.what
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, (OverflowError, ValueError)):
        return f"arithmetic error: {exc}"
    if isinstance(exc, RecursionError):
        return "call depth exceeded"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"internal error {type(exc).__name__}: {exc}"


def _no_events(kind: str, data: dict) -> None:
    pass


def _collect_retained(prefix: str, pou: PouInfo, out: dict, persistent_only: bool, all_vars: bool) -> None:
    """IEC: a RETAIN variable is kept whole; an FB instance declared RETAIN
    keeps all its variables; an FB type may declare its own RETAIN block."""
    from plc_lang.types import ArrayType
    for v in pou.vars.values():
        if v.section in ("VAR_TEMP", "VAR_EXTERNAL", "VAR_IN_OUT", "RESULT"):
            continue
        wanted = v.persistent if persistent_only else (v.retain or v.persistent)
        if all_vars or wanted:
            out[f"{prefix}.{v.name}"] = v.type
            continue
        t = v.type
        if isinstance(t, FBType) and not t.pou.std:
            _collect_retained(f"{prefix}.{v.name}", t.pou, out, persistent_only, False)
        elif isinstance(t, ArrayType) and isinstance(t.elem, FBType) and not t.elem.pou.std and len(t.dims) == 1:
            lo, hi = t.dims[0]
            for i in range(lo, hi + 1):
                _collect_retained(f"{prefix}.{v.name}[{i}]", t.elem.pou, out, persistent_only, False)


def _scalar(t) -> bool:
    from plc_lang.types import ArrayType, StructType
    return not isinstance(t, (ArrayType, StructType, FBType))
