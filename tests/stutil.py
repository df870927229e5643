"""Helpers for tests: compile ST text, run it on the virtual clock, read tags."""
from __future__ import annotations

import json
import os

from plc_lang.diagnostics import render
from plc_lang.driver import check_project, compile_project
from plc_lang.source import SourceFile
from runtime.engine import Engine


def diagnostics(src: str, path: str = "t.st"):
    """All diagnostics (errors and warnings) for one source text."""
    return check_project([SourceFile(path, src)]).diagnostics


def error_codes(src: str) -> list[str]:
    return [d.code for d in diagnostics(src) if d.is_error]


def warning_codes(src: str) -> list[str]:
    return [d.code for d in diagnostics(src) if not d.is_error]


def build(src: str, *, program: str | None = None, interval: str | int = "10ms",
          watchdog_s: float = 1.0, path: str = "t.st") -> Engine:
    """Compile (asserting no errors) and return an Engine ready to scan."""
    r = compile_project([SourceFile(path, src)])
    if not r.ok:
        raise AssertionError("compile errors:\n" + render(r.diagnostics, r.sources, "short"))
    ns = interval if isinstance(interval, int) else _ns(interval)
    cfg = r.project.config
    kw = dict(program_name=program, interval_ns=None if cfg and not program else ns, watchdog_s=watchdog_s)
    eng = Engine(r.program, **kw)
    if os.environ.get("GRIDPLC_DIFF_NATIVE"):
        return _dual(r.program, eng, kw)
    return eng


def _dual(program, eng: Engine, kw: dict):
    """GRIDPLC_DIFF_NATIVE=1 (tests/test_native.py): the same program on the
    native backend beside the Python one, compared after every scan. Each
    build is logged to $GRIDPLC_DIFF_NATIVE_LOG as `native` or `python: why`."""
    from plc_lang.native import native_program
    nat, why = native_program(program)
    log = os.environ.get("GRIDPLC_DIFF_NATIVE_LOG")
    if log:
        with open(log, "a") as f:
            f.write("native\n" if nat is not None else f"python: {why}\n")
    if nat is None:
        return eng
    return DualEngine(eng, Engine(nat, **kw))


class DualEngine:
    """Quacks like the Python engine; scans and sets go to both, and after
    every scan the faults and every variable must be the same, bit for bit."""

    _BOTH = ("queue_write", "force", "release", "reset_task", "stage_input", "declare_input", "declare_output")

    def __init__(self, py: Engine, nat: Engine):
        self._py = py
        self._nat = nat
        self._diverged = False

    def __getattr__(self, name):
        if name in DualEngine._BOTH:
            def both(*a, **kw):
                getattr(self._nat, name)(*a, **kw)
                return getattr(self._py, name)(*a, **kw)
            return both
        return getattr(self._py, name)

    def scan(self, now_ns: int, due=None):
        f1 = self._py.scan(now_ns, due)
        f2 = self._nat.scan(now_ns, None if due is None else
                            [t for t in self._nat.tasks if t.name in {d.name for d in due}])
        a = [(f.task, f.what, f.where) for f in f1]
        b = [(f.task, f.what, f.where) for f in f2]
        assert a == b, f"faults differ at t={now_ns}: python {a}, native {b}"
        if any(f.what.startswith("watchdog") for f in f1):
            self._diverged = True       # how far a runaway loop got is wall time
        if not self._diverged:
            self.compare(now_ns)
        return f1

    def compare(self, now_ns=None) -> None:
        s1 = json.dumps(self._py.snapshot(), sort_keys=True)
        s2 = json.dumps(self._nat.snapshot(), sort_keys=True)
        if s1 != s2:
            d1, d2 = json.loads(s1), json.loads(s2)
            diff = [(k, d1[k], d2.get(k)) for k in d1 if json.dumps(d1[k]) != json.dumps(d2.get(k))]
            raise AssertionError(f"python and native differ at t={now_ns}: {diff[:5]}")

    def run(self, cycles: int, start_ns: int = 0):
        period = self._py.base_period_ns
        for k in range(cycles):
            faults = self.scan(start_ns + k * period)
            if faults:
                return faults[0]
        return None

    def set_text(self, path: str, text: str) -> None:
        self._py.set_text(path, text)
        self._nat.set_text(path, text)

    def tag(self, path: str):
        return _DualTag(self._py.tag(path), self._nat.tag(path))

    def close(self) -> None:
        self._py.close()
        self._nat.close()


class _DualTag:
    def __init__(self, a, b):
        self._a, self._b = a, b

    def __getattr__(self, name):
        return getattr(self._a, name)

    def get(self):
        return self._a.get()

    def set(self, value) -> None:
        self._a.set(value)
        self._b.set(value)


def run(src: str, cycles: int = 1, **kw) -> dict:
    """Compile, run `cycles` scans, return the snapshot (keys `Inst.var`)."""
    e = build(src, **kw)
    try:
        fault = e.run(cycles)
        if fault is not None:
            raise AssertionError(f"unexpected fault: {fault}")
        return e.snapshot()
    finally:
        e.close()


def _ns(text: str) -> int:
    from plc_lang.literals import parse_duration_ns
    return parse_duration_ns(text)


def shared_dir():
    """../shared beside the repository (the data the brief ships), else /work/shared."""
    from pathlib import Path
    here = Path(__file__).resolve().parents[1].parent / "shared"
    return here if here.is_dir() else Path("/work/shared")
