"""The engine: a sans-I/O scan step over a compiled program.

`Engine.scan(now_ns)` latches the time, runs the tasks due at `now_ns` in
priority order, and records faults. It never reads the wall clock except
through the watchdog. Offline (`gridplc sim`) and live modes call the same
`scan`, so they share every line that decides outputs.
"""
from __future__ import annotations

import math
import sys
import time
import traceback
from dataclasses import dataclass, field

from plc_lang.codegen import GENERATED_FILENAME, CompiledProgram
from plc_lang.model import PouInfo
from plc_lang.rt_support import Context
from plc_lang.types import FBType
from plc_lang.values import PlcFault

from . import tags
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


@dataclass
class Instance:
    name: str
    pou: PouInfo
    obj: object


class Engine:
    def __init__(self, program: CompiledProgram, *, program_name: str | None = None,
                 interval_ns: int | None = None, watchdog_s: float = 1.0):
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
        self._wd = Watchdog(self.ns["wd__"], watchdog_s)
        self._build_tasks(program_name, interval_ns)

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
        """One scan at latched time now_ns. Returns the faults raised in it."""
        self.scan_count += 1
        ctx = self.ctx
        ctx.now_ns = now_ns
        ctx.now_ms = now_ns // 1_000_000
        new_faults = []
        for task in (self.due(now_ns) if due is None else due):
            if task.faulted is not None:
                continue
            task.scans += 1
            wd = self._wd
            wd.arm()
            t0 = time.perf_counter()
            try:
                for _name, obj in task.instances:
                    obj.body__()
            except BaseException as exc:  # noqa: BLE001 - every ST fault must be contained
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                f = self._fault(task, exc, now_ns)
                new_faults.append(f)
            finally:
                wd.disarm()
            if task.faulted is None and time.perf_counter() - t0 > self.watchdog_s:
                f = Fault(task.name, f"watchdog: the scan took longer than {self.watchdog_s:g} s",
                          None, self.scan_count, now_ns)
                task.faulted = f
                self.faults.append(f)
                new_faults.append(f)
        return new_faults

    def _fault(self, task: Task, exc: BaseException, now_ns: int) -> Fault:
        where = getattr(exc, "where", None) if isinstance(exc, PlcFault) else None
        if isinstance(exc, PlcFault):
            what = exc.what
        elif isinstance(exc, ZeroDivisionError):
            what = "division by zero"
        elif isinstance(exc, (OverflowError, ValueError)):
            what = f"arithmetic error: {exc}"
        elif isinstance(exc, RecursionError):
            what = "call depth exceeded"
        elif isinstance(exc, MemoryError):
            what = "out of memory"
        else:
            # Not an ST fault: a bug in gridplc. Still contained, but say so.
            what = f"internal error {type(exc).__name__}: {exc}"
            traceback.print_exception(exc, file=sys.stderr)
        if where is None:
            where = self._locate(exc)
        f = Fault(task.name, what, where, self.scan_count, now_ns)
        task.faulted = f
        self.faults.append(f)
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
    def roots(self) -> dict:
        return {k: (i.obj, FBType(i.pou.name, i.pou)) for k, i in self.instances.items()}

    def tag(self, path: str) -> tags.Tag:
        return tags.resolve(path, self.roots())

    def set_text(self, path: str, text: str) -> None:
        t = self.tag(path)
        if not _scalar(t.type):
            raise tags.TagError(f"'{path}' is {t.type}; set its elements one by one")
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


def _scalar(t) -> bool:
    from plc_lang.types import ArrayType, StructType
    return not isinstance(t, (ArrayType, StructType, FBType))
